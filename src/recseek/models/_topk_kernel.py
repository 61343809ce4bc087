"""Multi-core selection of the best k entries of each row (a bounded heap per row)."""

from __future__ import annotations

import numpy as np

from .._numba import njit, pnjit, prange


@njit(inline="always")
def _worse(v1, j1, v2, j2) -> bool:
    """Is entry (v1, j1) ranked below (v2, j2)? Lower score, or equal score and higher column."""
    return v1 < v2 or (v1 == v2 and j1 > j2)


@njit(inline="always")
def _sift_down(hv, hi, size, v, j) -> None:
    """Place (v, j) at the root of the min-heap ``hv/hi[:size]`` and restore the heap."""
    c = 0
    while True:
        w = 2 * c + 1
        if w >= size:
            break
        if w + 1 < size and _worse(hv[w + 1], hi[w + 1], hv[w], hi[w]):
            w += 1
        if _worse(hv[w], hi[w], v, j):
            hv[c] = hv[w]
            hi[c] = hi[w]
            c = w
        else:
            break
    hv[c] = v
    hi[c] = j


@njit(inline="always")
def _offer(hv, hi, size, k, v, j) -> int:
    """Offer (v, j) to the bounded min-heap ``hv/hi[:size]`` of capacity k; returns the new size."""
    if size < k:
        # push and sift up: the root holds the worst kept entry
        c = size
        while c > 0:
            p = (c - 1) >> 1
            if _worse(v, j, hv[p], hi[p]):
                hv[c] = hv[p]
                hi[c] = hi[p]
                c = p
            else:
                break
        hv[c] = v
        hi[c] = j
        return size + 1
    if _worse(hv[0], hi[0], v, j):
        _sift_down(hv, hi, size, v, j)
    return size


@njit(inline="always")
def _drain(hv, hi, size, out_idx, out_val) -> None:
    """Empty the heap into ``out_idx/out_val[:size]``, best first (pops the worst into the back)."""
    while size > 0:
        size -= 1
        out_idx[size] = hi[0]
        out_val[size] = hv[0]
        _sift_down(hv, hi, size, hv[size], hi[size])


@njit(inline="always")
def _topk_row(row, k, out_idx, out_val) -> None:
    """Best k entries of one row into ``out_idx``/``out_val`` (length k), best first.

    Once the heap is full, an entry enters only if its score is above the worst kept one
    (a later column never wins a tie), compared against a local copy of the heap's root:
    the compiler cannot prove the heap and the row apart, and reloading the root from
    memory for every entry made this loop about ten times slower on one thread.
    """
    hv = np.empty(k, dtype=row.dtype)
    hi = np.empty(k, dtype=np.int64)
    n = row.shape[0]
    size = 0
    j = 0
    while j < n and size < k:
        v = row[j]
        if v > -np.inf:
            size = _offer(hv, hi, size, k, v, j)
        j += 1
    if size == k:
        worst = hv[0]
        for c in range(j, n):
            v = row[c]
            if v > worst:
                _sift_down(hv, hi, size, v, c)
                worst = hv[0]
    for t in range(size, k):
        out_idx[t] = -1
        out_val[t] = -np.inf
    _drain(hv, hi, size, out_idx, out_val)


@njit
def select_topk(values, ids, m, k, out_ids, out_vals) -> int:
    """The best ``min(m, k)`` pairs of ``(values[:m], ids[:m])`` into ``out_ids/out_vals``, best
    first (higher value, then lower id), with a bounded heap; returns how many were written."""
    hv = np.empty(k, dtype=values.dtype)
    hi = np.empty(k, dtype=np.int64)
    size = 0
    for t in range(m):
        size = _offer(hv, hi, size, k, values[t], ids[t])
    n = size
    _drain(hv, hi, size, out_ids, out_vals)
    return n


@pnjit
def topk_rows(scores: np.ndarray, k: int, out_idx: np.ndarray, out_val: np.ndarray) -> None:
    """Fill ``out_idx``/``out_val`` (n, k) with each row's best entries, best first.

    Order: higher score first, then lower column. NaN and -inf are skipped; rows with
    fewer than k eligible entries are padded with -1 / -inf. Rows run in parallel.
    """
    for r in prange(scores.shape[0]):
        _topk_row(scores[r], k, out_idx[r], out_val[r])


@njit
def topk_rows_serial(scores: np.ndarray, k: int, out_idx: np.ndarray, out_val: np.ndarray) -> None:
    """:func:`topk_rows` on one thread (small batches, where threads cost more than they save)."""
    for r in range(scores.shape[0]):
        _topk_row(scores[r], k, out_idx[r], out_val[r])
