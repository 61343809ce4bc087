"""numba SGD epoch of PRankD (users in order; in parallel with lock-free item updates
after ``set_deterministic(False)``)."""

from __future__ import annotations

import numpy as np

from ..._numba import hogwild, prange
from .._sorted import find_sorted


@hogwild
def prankd_epoch(indptr, indices, values, p, q, cum_pop, weights, s_indptr, s_indices, s_data,
                 sim_filter, lr, reg, seed):
    """One epoch over every observed ``(u, i)``: draw ``j`` unseen by ``u`` with
    probability proportional to popularity and take an SGD step on
    ``w_j (r_ui - r_uj - d_ij r_ui)^2 / 2`` where ``d_ij = sqrt(1 - tanh(filter s_ij))``.
    Returns the summed squared error."""
    n_users = indptr.shape[0] - 1
    n_items, k = q.shape
    total = cum_pop[n_items - 1]
    errs = np.zeros(n_users)
    for u in prange(n_users):
        s, e = indptr[u], indptr[u + 1]
        if e == s or e - s >= n_items:
            continue
        np.random.seed(seed + u)
        acc = 0.0
        for t in range(s, e):
            i = indices[t]
            j = -1
            for _ in range(100):
                cand = np.searchsorted(cum_pop, np.random.random() * total, side="right")
                if cand >= n_items:
                    cand = n_items - 1
                if find_sorted(indices, s, e, cand) < 0:
                    j = cand
                    break
            if j < 0:
                continue
            pos = find_sorted(s_indices, s_indptr[i], s_indptr[i + 1], j)
            sim = s_data[pos] if pos >= 0 else 0.0
            dist = np.sqrt(max(0.0, 1.0 - np.tanh(sim * sim_filter)))
            diff = 0.0
            for f in range(k):
                diff += p[u, f] * (q[i, f] - q[j, f])
            err = weights[j] * (diff - dist * values[t])
            acc += err * err
            for f in range(k):
                pu, qi, qj = p[u, f], q[i, f], q[j, f]
                p[u, f] = pu - lr * (err * (qi - qj) + reg * pu)
                q[i, f] = qi - lr * (err * pu + reg * qi)
                q[j, f] = qj - lr * (-err * pu + reg * qj)
        errs[u] = acc
    return errs.sum()
