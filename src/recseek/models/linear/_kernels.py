"""numba kernels of the linear models."""

from __future__ import annotations

import numpy as np

from ..._numba import pnjit, prange
from .._sorted import find_sorted


@pnjit
def slim_cd(g_indptr, g_indices, g_data, cand, l1, l2, epochs, tol, positive):
    """Elastic-net coordinate descent of SLIM, one target item per parallel task.

    For target item ``j`` the weights over its candidate items ``cand[j]`` (-1 padded)
    minimise ``1/2 ||x_j - X_C w||^2 + l1 |w|_1 + l2/2 |w|^2`` (``w >= 0`` when
    ``positive``), written with the Gram matrix ``G = X^T X`` (CSR, sorted indices).
    Returns ``(weights (n, k), iterations used per item)``.
    """
    n, k = cand.shape
    out = np.zeros((n, k), dtype=np.float32)
    used = np.zeros(n, dtype=np.int32)
    for j in prange(n):
        m = 0
        while m < k and cand[j, m] >= 0:
            m += 1
        if m == 0:
            continue
        gram = np.zeros((m, m), dtype=np.float64)
        rhs = np.zeros(m, dtype=np.float64)
        for a in range(m):
            ca = cand[j, a]
            s, e = g_indptr[ca], g_indptr[ca + 1]
            p = find_sorted(g_indices, s, e, j)
            if p >= 0:
                rhs[a] = g_data[p]
            for b in range(m):
                p = find_sorted(g_indices, s, e, cand[j, b])
                if p >= 0:
                    gram[a, b] = g_data[p]
        w = np.zeros(m, dtype=np.float64)
        q = np.zeros(m, dtype=np.float64)
        sweeps = 0
        for _ in range(epochs):
            sweeps += 1
            max_delta = 0.0
            max_w = 0.0
            for a in range(m):
                old = w[a]
                rho = rhs[a] - q[a] + gram[a, a] * old
                if rho > l1:
                    new = (rho - l1) / (gram[a, a] + l2)
                elif rho < -l1 and not positive:
                    new = (rho + l1) / (gram[a, a] + l2)
                else:
                    new = 0.0
                if new != old:
                    d = new - old
                    for b in range(m):
                        q[b] += d * gram[b, a]
                    w[a] = new
                    if abs(d) > max_delta:
                        max_delta = abs(d)
                if abs(new) > max_w:
                    max_w = abs(new)
            if max_delta <= tol * max(max_w, 1e-12):
                break
        used[j] = sweeps
        for a in range(m):
            out[j, a] = w[a]
    return out, used
