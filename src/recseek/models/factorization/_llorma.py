"""Numba kernels of LLORMA: weighted local SGD, pair prediction and local fold-in.

Local models are stacked: ``p`` has shape (n_anchors, n_users, k), ``q`` (n_anchors,
n_items, k), kernel weights ``wu`` (n_anchors, n_users) and ``wi`` (n_anchors, n_items).
Every kernel runs anchors (or pairs, or new users) in parallel; each anchor's SGD is
sequential, so training is deterministic whatever the number of threads.
"""

from __future__ import annotations

import math

import numpy as np

from ..._numba import pnjit, prange


def kernel_weights(vectors: np.ndarray, anchors: np.ndarray, width: float) -> np.ndarray:
    """Epanechnikov weights (n_anchors, n) of every row of ``vectors`` towards ``anchors``.

    The distance is the angle between embeddings scaled to [0, 2] (``2/pi * arccos(cos)``);
    rows or anchors with zero norm count as orthogonal (distance 1).
    """
    v = np.asarray(vectors, dtype=np.float64)
    a = np.asarray(anchors, dtype=np.float64)
    nv = np.linalg.norm(v, axis=1)
    na = np.linalg.norm(a, axis=1)
    cos = a @ v.T
    denom = na[:, None] * nv[None, :]
    ok = denom > 0
    cos = np.where(ok, cos / np.where(ok, denom, 1.0), 0.0)
    dist = (2.0 / math.pi) * np.arccos(np.clip(cos, -1.0, 1.0))
    w = 0.75 * (1.0 - (dist / width) ** 2)
    return np.maximum(w, 0.0).astype(np.float32)


@pnjit
def local_epoch(users, items, ratings, order, wu, wi, p, q, lr, reg):  # pragma: no cover - numba
    """One weighted SGD epoch of every local model; returns the weighted squared error per anchor.

    For rating ``(u, i, r)`` with weight ``w = wu[t, u] * wi[t, i]``:
    ``p_u += lr (w e q_i - reg p_u)``, ``q_i += lr (w e p_u - reg q_i)``.
    """
    n_anchors = p.shape[0]
    k = p.shape[2]
    losses = np.zeros(n_anchors, dtype=np.float64)
    for t in prange(n_anchors):
        loss = 0.0
        for s in range(order.shape[0]):
            idx = order[s]
            u = users[idx]
            i = items[idx]
            w = wu[t, u] * wi[t, i]
            pred = np.float32(0.0)
            for f in range(k):
                pred += p[t, u, f] * q[t, i, f]
            e = ratings[idx] - pred
            loss += w * e * e
            we = w * e
            for f in range(k):
                pf = p[t, u, f]
                qf = q[t, i, f]
                p[t, u, f] = pf + lr * (we * qf - reg * pf)
                q[t, i, f] = qf + lr * (we * pf - reg * qf)
        losses[t] = loss
    return losses


@pnjit
def predict_pairs(users, items, wu, wi, p, q, fallback):  # pragma: no cover - numba
    """Kernel-weighted average of the local predictions for pairs; ``fallback`` where no weight."""
    n = users.shape[0]
    n_anchors = p.shape[0]
    k = p.shape[2]
    out = np.empty(n, dtype=np.float32)
    for j in prange(n):
        u = users[j]
        i = items[j]
        num = 0.0
        den = 0.0
        for t in range(n_anchors):
            w = wu[t, u] * wi[t, i]
            if w == 0.0:
                continue
            dot = 0.0
            for f in range(k):
                dot += p[t, u, f] * q[t, i, f]
            num += w * dot
            den += w
        out[j] = num / den if den > 0.0 else fallback
    return out


@pnjit
def fold_in_local(indptr, indices, data, wu, wi, q, reg):  # pragma: no cover - numba
    """New users' local factors (n_anchors, n_new, k) by weighted ridge regression.

    The stationary point of the local SGD for one user with the items fixed:
    ``(sum_j w_j q_j q_j^T + n reg I) p = sum_j w_j r_j q_j`` with ``w_j = wu[t, u] wi[t, j]``.
    """
    n_new = indptr.shape[0] - 1
    n_anchors = q.shape[0]
    k = q.shape[2]
    out = np.zeros((n_anchors, n_new, k), dtype=np.float32)
    for u in prange(n_new):
        lo, hi = indptr[u], indptr[u + 1]
        if hi == lo:
            continue
        a = np.empty((k, k), dtype=np.float64)
        b = np.empty(k, dtype=np.float64)
        for t in range(n_anchors):
            if wu[t, u] == 0.0:
                continue
            a[:] = 0.0
            b[:] = 0.0
            for s in range(lo, hi):
                j = indices[s]
                w = wu[t, u] * wi[t, j]
                if w == 0.0:
                    continue
                for r in range(k):
                    b[r] += w * data[s] * q[t, j, r]
                    for c in range(k):
                        a[r, c] += w * q[t, j, r] * q[t, j, c]
            lam = reg * (hi - lo) + 1e-6
            for r in range(k):
                a[r, r] += lam
            sol = np.linalg.solve(a, b)
            for r in range(k):
                out[t, u, r] = sol[r]
    return out
