"""numba kernels of the metrics (imported lazily)."""

from __future__ import annotations

import numpy as np

from .._numba import pnjit, prange


@pnjit
def auc_rows(scores: np.ndarray, pos: np.ndarray, cand: np.ndarray) -> np.ndarray:  # pragma: no cover - numba
    """Per row: share of (positive, negative) candidate pairs with the positive ahead."""
    n, m = scores.shape
    out = np.full(n, 0.5)
    for r in prange(n):
        n_neg = 0
        n_pos = 0
        for j in range(m):
            if cand[r, j]:
                if pos[r, j]:
                    n_pos += 1
                else:
                    n_neg += 1
        if n_pos == 0 or n_neg == 0:
            continue
        neg = np.empty(n_neg)
        c = 0
        for j in range(m):
            if cand[r, j] and not pos[r, j]:
                neg[c] = scores[r, j]
                c += 1
        neg.sort()
        total = 0.0
        for j in range(m):
            if pos[r, j]:
                s = scores[r, j]
                lo = np.searchsorted(neg, s, side="left")
                hi = np.searchsorted(neg, s, side="right")
                total += lo + 0.5 * (hi - lo)
        out[r] = total / (n_pos * n_neg)
    return out
