"""Binary search in a sorted CSR row, shared by the SLIM, FISM and PRankD kernels."""

from __future__ import annotations

from .._numba import njit


@njit
def find_sorted(indices, start, end, col):  # pragma: no cover - numba
    """Position of ``col`` in the sorted ``indices[start:end]``, or -1."""
    lo, hi = start, end
    while lo < hi:
        mid = (lo + hi) // 2
        if indices[mid] < col:
            lo = mid + 1
        else:
            hi = mid
    if lo < end and indices[lo] == col:
        return lo
    return -1
