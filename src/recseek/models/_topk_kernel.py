"""Multi-core selection of the best k entries of each row (a bounded heap per row)."""

from __future__ import annotations

import numpy as np

from .._numba import pnjit, prange


@pnjit
def topk_rows(scores: np.ndarray, k: int, out_idx: np.ndarray, out_val: np.ndarray) -> None:
    """Fill ``out_idx``/``out_val`` (n, k) with each row's best entries, best first.

    Order: higher score first, then lower column. NaN and -inf are skipped; rows with
    fewer than k eligible entries are padded with -1 / -inf.
    """
    n, m = scores.shape
    for r in prange(n):
        hv = np.empty(k, dtype=scores.dtype)
        hi = np.empty(k, dtype=np.int64)
        size = 0
        for j in range(m):
            v = scores[r, j]
            if not (v > -np.inf):
                continue
            if size < k:
                # push and sift up (min-heap on score; among equal scores the larger column is worse)
                c = size
                size += 1
                while c > 0:
                    p = (c - 1) >> 1
                    if hv[p] > v or (hv[p] == v and hi[p] < j):
                        hv[c] = hv[p]
                        hi[c] = hi[p]
                        c = p
                    else:
                        break
                hv[c] = v
                hi[c] = j
            elif v > hv[0]:
                # replace the worst and sift down
                c = 0
                while True:
                    left = 2 * c + 1
                    if left >= size:
                        break
                    w = left
                    right = left + 1
                    if right < size and (hv[right] < hv[left] or (hv[right] == hv[left] and hi[right] > hi[left])):
                        w = right
                    if hv[w] < v or (hv[w] == v and hi[w] > j):
                        hv[c] = hv[w]
                        hi[c] = hi[w]
                        c = w
                    else:
                        break
                hv[c] = v
                hi[c] = j
        for t in range(size, k):
            out_idx[r, t] = -1
            out_val[r, t] = -np.inf
        # pop the worst repeatedly, filling the output from the back
        while size > 0:
            size -= 1
            out_idx[r, size] = hi[0]
            out_val[r, size] = hv[0]
            v = hv[size]
            j = hi[size]
            c = 0
            while True:
                left = 2 * c + 1
                if left >= size:
                    break
                w = left
                right = left + 1
                if right < size and (hv[right] < hv[left] or (hv[right] == hv[left] and hi[right] > hi[left])):
                    w = right
                if hv[w] < v or (hv[w] == v and hi[w] > j):
                    hv[c] = hv[w]
                    hi[c] = hi[w]
                    c = w
                else:
                    break
            hv[c] = v
            hi[c] = j
