"""numba kernels of the metrics (imported lazily)."""

from __future__ import annotations

import numpy as np

from .._numba import pnjit, prange


@pnjit
def auc_rows(scores: np.ndarray, pos: np.ndarray, cand: np.ndarray) -> np.ndarray:  # pragma: no cover - numba
    """Per row: share of (positive, negative) candidate pairs with the positive ahead
    (ties count one half); 0.5 for rows without positives or negatives.

    Rows with few positives compare each candidate with every positive (O(m * P));
    others sort the negatives and binary-search each positive (O(m log m)).
    """
    n, m = scores.shape
    out = np.full(n, 0.5)
    for r in prange(n):
        n_pos = 0
        n_neg = 0
        for j in range(m):
            if cand[r, j]:
                if pos[r, j]:
                    n_pos += 1
                else:
                    n_neg += 1
        if n_pos == 0 or n_neg == 0:
            continue
        pscore = np.empty(n_pos)
        c = 0
        for j in range(m):
            if cand[r, j] and pos[r, j]:
                pscore[c] = scores[r, j]
                c += 1
        total = 0.0
        if n_pos <= 16:
            for j in range(m):
                if cand[r, j] and not pos[r, j]:
                    s = scores[r, j]
                    for p in range(n_pos):
                        if pscore[p] > s:
                            total += 1.0
                        elif pscore[p] == s:
                            total += 0.5
        else:
            neg = np.empty(n_neg)
            c = 0
            for j in range(m):
                if cand[r, j] and not pos[r, j]:
                    neg[c] = scores[r, j]
                    c += 1
            neg.sort()
            for p in range(n_pos):
                lo = np.searchsorted(neg, pscore[p], side="left")
                hi = np.searchsorted(neg, pscore[p], side="right")
                total += lo + 0.5 * (hi - lo)
        out[r] = total / (n_pos * n_neg)
    return out
