"""Numba kernel: a new user's bias and factors by ridge regression on fixed items."""

from __future__ import annotations

import numpy as np

from ..._numba import pnjit, prange


@pnjit
def ridge_fold_in(indptr, indices, data, q, offset, reg, with_bias):  # pragma: no cover - numba
    """Solve ``min sum_j (r_j - offset_j - b - p.q_j)^2 + reg * n * (|p|^2 + b^2)`` per row."""
    n = indptr.shape[0] - 1
    d = q.shape[1]
    dd = d + 1 if with_bias else d
    start = 1 if with_bias else 0
    bias = np.zeros(n, dtype=np.float32)
    factors = np.zeros((n, d), dtype=np.float32)
    for u in prange(n):
        lo, hi = indptr[u], indptr[u + 1]
        if hi == lo:
            continue
        a = np.zeros((dd, dd), dtype=np.float64)
        b = np.zeros(dd, dtype=np.float64)
        x = np.empty(dd, dtype=np.float64)
        for p in range(lo, hi):
            j = indices[p]
            if with_bias:
                x[0] = 1.0
            for f in range(d):
                x[start + f] = q[j, f]
            y = data[p] - offset[j]
            for r in range(dd):
                b[r] += x[r] * y
                for c in range(dd):
                    a[r, c] += x[r] * x[c]
        lam = reg * (hi - lo) + 1e-6
        for r in range(dd):
            a[r, r] += lam
        sol = np.linalg.solve(a, b)
        if with_bias:
            bias[u] = sol[0]
        for f in range(d):
            factors[u, f] = sol[start + f]
    return bias, factors
