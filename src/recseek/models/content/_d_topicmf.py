"""Numba kernels of TopicMF (TopicMFAT, TopicMFMT): one SGD pass over the ratings with the
review-topic coupling, and the topic proportions of every review."""

from __future__ import annotations

import numpy as np

from ..._numba import njit, pnjit, prange


@njit
def topicmf_pass(users, items, ratings, w_ptr, w_idx, w_val, theta, phi, p, q, bu, bi, mu, lr,
                 lam, reg_u, reg_v, reg_b, kappa, multiplicative):  # pragma: no cover - numba
    """One ordered SGD pass (records in ``users``/``items`` order; record ``d`` is review ``d``).

    ``theta`` (n_records, K) and ``phi`` (K, n_words) stay fixed during the pass; ``kappa``
    holds (kappa_1, kappa_2) for the additive transform, (kappa, unused) for the
    multiplicative one, and is updated in place. Returns the rating sum of squared errors.
    """
    k = p.shape[1]
    sse = 0.0
    wpred = np.empty(w_idx.shape[0] if w_idx.shape[0] > 0 else 1, dtype=np.float32)
    for d in range(users.shape[0]):
        u = users[d]
        i = items[d]
        pred = mu + bu[u] + bi[i]
        for f in range(k):
            pred += p[u, f] * q[i, f]
        e = ratings[d] - pred
        sse += e * e
        bu[u] += lr * (e - reg_b * bu[u])
        bi[i] += lr * (e - reg_b * bi[i])
        lo, hi = w_ptr[d], w_ptr[d + 1]
        # the review's reconstruction w^ = theta_d . phi[:, w] (fixed within the pass)
        for pos in range(lo, hi):
            w = w_idx[pos]
            s = 0.0
            for t in range(k):
                s += theta[d, t] * phi[t, w]
            wpred[pos - lo] = s
        for f in range(k):
            pf = p[u, f]
            qf = q[i, f]
            p[u, f] += lr * (e * qf - reg_u * pf)
            q[i, f] += lr * (e * pf - reg_v * qf)
            for pos in range(lo, hi):
                w = w_idx[pos]
                werr = w_val[pos] - wpred[pos - lo]
                deriv = werr * theta[d, f] * (phi[f, w] - wpred[pos - lo])
                g1 = 0.0
                g2 = 0.0
                for t in range(k):
                    c = werr * phi[t, w] * theta[d, t] * (1.0 - theta[d, t])
                    g1 += c * abs(p[u, t])
                    g2 += c * abs(q[i, t])
                if multiplicative:
                    kappa[0] += lr * lam * g1
                    p[u, f] += lr * kappa[0] * deriv * q[i, f]
                    q[i, f] += lr * kappa[0] * deriv * p[u, f]
                else:
                    kappa[0] += lr * lam * g1
                    kappa[1] += lr * lam * g2
                    p[u, f] += lr * kappa[0] * deriv
                    q[i, f] += lr * kappa[1] * deriv
    return sse


@pnjit
def topic_proportions(users, items, p, q, kappa, multiplicative, theta):  # pragma: no cover - numba
    """``theta[d] = softmax(kappa_1 |p_u| + kappa_2 |q_i|)`` (additive) or
    ``softmax(kappa |p_u| * |q_i|)`` (multiplicative) for every record ``d``."""
    k = p.shape[1]
    for d in prange(users.shape[0]):
        u = users[d]
        i = items[d]
        top = -np.inf
        for t in range(k):
            if multiplicative:
                x = kappa[0] * abs(p[u, t]) * abs(q[i, t])
            else:
                x = kappa[0] * abs(p[u, t]) + kappa[1] * abs(q[i, t])
            theta[d, t] = x
            if x > top:
                top = x
        s = 0.0
        for t in range(k):
            theta[d, t] = np.exp(theta[d, t] - top)
            s += theta[d, t]
        for t in range(k):
            theta[d, t] /= s
