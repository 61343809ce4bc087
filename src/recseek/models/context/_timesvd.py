"""Numba SGD kernel of timeSVD++ (one epoch over users in a given order)."""

from __future__ import annotations

import math

import numpy as np

from ..._numba import hogwild, njit, prange


@njit
def timesvd_range(lo, hi, user_order, indptr, indices, ratings, inner_order, devs, ud, bins, mu, bu, au, bud, bi,
                  bib, cu, cud, p, ap, pud, q, y, lr, reg, reg_bias):  # pragma: no cover - numba
    """timeSVD++ SGD over the users ``user_order[lo:hi]``; returns the squared error.

    Every rating updates the biases, scalings and the user / item factors; the gradient of
    the implicit factors ``y_j`` of the user's items is gathered over the user's ratings
    and applied once after them.
    """
    k = p.shape[1]
    z = np.zeros(k, dtype=np.float32)
    acc = np.zeros(k, dtype=np.float32)
    loss = 0.0
    for t in range(lo, hi):
        u = user_order[t]
        a = indptr[u]
        b = indptr[u + 1]
        if b == a:
            continue
        norm = np.float32(1.0 / math.sqrt(b - a))
        for f in range(k):
            z[f] = 0.0
            acc[f] = 0.0
        for s in range(a, b):
            j = indices[s]
            for f in range(k):
                z[f] += y[j, f]
        for f in range(k):
            z[f] *= norm
        for pp in range(a, b):
            s = inner_order[pp]
            i = indices[s]
            d = ud[s]
            bn = bins[s]
            dev = devs[s]
            scale = cu[u] + cud[d]
            ibias = bi[i] + bib[i, bn]
            pred = mu + bu[u] + au[u] * dev + bud[d] + ibias * scale
            for f in range(k):
                pred += q[i, f] * (p[u, f] + ap[u, f] * dev + pud[d, f] + z[f])
            e = ratings[s] - pred
            loss += e * e
            bu[u] += lr * (e - reg_bias * bu[u])
            au[u] += lr * (e * dev - reg_bias * au[u])
            bud[d] += lr * (e - reg_bias * bud[d])
            bi[i] += lr * (e * scale - reg_bias * bi[i])
            bib[i, bn] += lr * (e * scale - reg_bias * bib[i, bn])
            cu[u] += lr * (e * ibias - reg_bias * (cu[u] - 1.0))
            cud[d] += lr * (e * ibias - reg_bias * cud[d])
            for f in range(k):
                qf = q[i, f]
                eff = p[u, f] + ap[u, f] * dev + pud[d, f] + z[f]
                q[i, f] = qf + lr * (e * eff - reg * qf)
                p[u, f] += lr * (e * qf - reg * p[u, f])
                ap[u, f] += lr * (e * qf * dev - reg * ap[u, f])
                pud[d, f] += lr * (e * qf - reg * pud[d, f])
                acc[f] += e * qf
        for s in range(a, b):
            j = indices[s]
            for f in range(k):
                y[j, f] += lr * (norm * acc[f] - reg * y[j, f])
    return loss


@hogwild
def timesvd_epoch(user_order, indptr, indices, ratings, inner_order, devs, ud, bins, mu, bu, au, bud, bi, bib, cu,
                  cud, p, ap, pud, q, y, lr, reg, reg_bias, n_chunks):  # pragma: no cover - numba
    """One timeSVD++ epoch over ``n_chunks`` contiguous pieces of the user order."""
    n = user_order.shape[0]
    losses = np.zeros(n_chunks, dtype=np.float64)
    for c in prange(n_chunks):
        losses[c] = timesvd_range(c * n // n_chunks, (c + 1) * n // n_chunks, user_order, indptr, indices, ratings,
                                  inner_order, devs, ud, bins, mu, bu, au, bud, bi, bib, cu, cud, p, ap, pud, q, y,
                                  lr, reg, reg_bias)
    return losses.sum()
