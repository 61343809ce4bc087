"""numba SGD epochs of the FISM models (users in order; per-user parallel with lock-free
item updates after ``set_deterministic(False)``)."""

from __future__ import annotations

import numpy as np

from ..._numba import hogwild, njit, prange
from .._sorted import find_sorted


@njit
def _sample_negative(indices, start, end, n_items):
    while True:
        j = np.random.randint(0, n_items)
        if find_sorted(indices, start, end, j) < 0:
            return j


@hogwild
def fism_epoch(indptr, indices, p, q, bi, bu, lr, reg, bias_reg, alpha, rho, pairwise, seed):
    """One epoch of FISM over every user.

    ``pairwise=False`` is FISMrmse: squared loss on each positive (target 1) and on
    ``rho`` sampled unobserved items per positive (target 0). ``pairwise=True`` is
    FISMauc: for each positive ``i`` and each of ``rho`` sampled negatives ``j`` the loss
    ``(1 - (r_ui - r_uj))^2``. The user's context ``n^-alpha sum_j p_j`` (the item
    itself excluded for positives) is held fixed during the user's pass and the
    gradient on the ``p_j`` is applied once at its end. Returns the summed loss.
    """
    n_users = indptr.shape[0] - 1
    n_items, k = q.shape
    losses = np.zeros(n_users)
    for u in prange(n_users):
        s, e = indptr[u], indptr[u + 1]
        n = e - s
        if n == 0:
            continue
        np.random.seed(seed + u)
        total = np.zeros(k)
        for t in range(s, e):
            total += p[indices[t]]
        g_all = np.zeros(k)
        g_own = np.zeros((n, k))
        loss = 0.0
        scale_pos = (n - 1.0) ** (-alpha) if n > 1 else 0.0
        scale_neg = n ** (-alpha)
        x = np.empty(k)
        for t in range(s, e):
            i = indices[t]
            for f in range(k):
                x[f] = (total[f] - p[i, f]) * scale_pos
            if pairwise:
                gx = np.zeros(k)
                for _ in range(rho):
                    j = _sample_negative(indices, s, e, n_items)
                    diff = bi[i] - bi[j]
                    for f in range(k):
                        diff += (q[i, f] - q[j, f]) * x[f]
                    err = 1.0 - diff
                    loss += err * err
                    bi[i] += lr * (err - bias_reg * bi[i])
                    bi[j] += lr * (-err - bias_reg * bi[j])
                    for f in range(k):
                        qi, qj = q[i, f], q[j, f]
                        gx[f] += err * (qi - qj)
                        q[i, f] = qi + lr * (err * x[f] - reg * qi)
                        q[j, f] = qj + lr * (-err * x[f] - reg * qj)
                for f in range(k):
                    g = gx[f] * scale_pos / rho
                    g_all[f] += g
                    g_own[t - s, f] += g
            else:
                # the positive, then rho sampled zeros
                for c in range(rho + 1):
                    if c == 0:
                        j = i
                        target = 1.0
                        sc = scale_pos
                        for f in range(k):
                            x[f] = (total[f] - p[i, f]) * sc
                    else:
                        j = _sample_negative(indices, s, e, n_items)
                        target = 0.0
                        sc = scale_neg
                        for f in range(k):
                            x[f] = total[f] * sc
                    pred = bu[u] + bi[j]
                    for f in range(k):
                        pred += q[j, f] * x[f]
                    err = target - pred
                    loss += err * err
                    bu[u] += lr * (err - bias_reg * bu[u])
                    bi[j] += lr * (err - bias_reg * bi[j])
                    for f in range(k):
                        qj = q[j, f]
                        g = err * qj * sc
                        g_all[f] += g
                        if c == 0:
                            g_own[t - s, f] += g
                        q[j, f] = qj + lr * (err * x[f] - reg * qj)
        for t in range(s, e):
            j = indices[t]
            for f in range(k):
                p[j, f] += lr * (g_all[f] - g_own[t - s, f] - reg * p[j, f])
        losses[u] = loss
    return losses.sum()
