"""Numba kernels of HFT: SGD passes over the ratings with the topic term, and the Gibbs
sweep over the topic assignments of the review words."""

from __future__ import annotations

import numpy as np

from ..._numba import njit, pnjit, prange


@njit
def seed_kernels(seed):  # pragma: no cover - numba
    """Seed numba's generator (used by :func:`sample_topics`)."""
    np.random.seed(seed)


@njit
def hft_pass(users, items, ratings, d_ptr, topics, theta, p, q, bu, bi, mu, lr, reg_u, reg_i, reg_b,
             lo, hi, kappa):  # pragma: no cover - numba
    """One ordered SGD pass. Record ``d``'s words are ``d_ptr[d]:d_ptr[d + 1]`` of
    ``topics`` (their topic assignments). The user factors also climb the log-likelihood
    of the review's topics under ``theta_u = softmax(kappa p_u)`` (held fixed during the
    pass): ``d/dp_uf sum_t log theta_{u,z_t} = kappa (n_f - n theta_uf)``. Returns the
    rating sum of squared errors."""
    k = p.shape[1]
    counts = np.zeros(k, dtype=np.float32)
    sse = 0.0
    for d in range(users.shape[0]):
        u = users[d]
        i = items[d]
        pred = mu + bu[u] + bi[i]
        for f in range(k):
            pred += p[u, f] * q[i, f]
        pred = min(max(pred, lo), hi)
        e = ratings[d] - pred
        sse += e * e
        bu[u] += lr * (e - reg_b * bu[u])
        bi[i] += lr * (e - reg_b * bi[i])
        start, stop = d_ptr[d], d_ptr[d + 1]
        if stop == start:
            continue
        counts[:] = 0.0
        for t in range(start, stop):
            counts[topics[t]] += 1.0
        n = np.float32(stop - start)
        for f in range(k):
            pf = p[u, f]
            qf = q[i, f]
            p[u, f] += lr * (e * qf - reg_u * pf) + lr * kappa * (counts[f] - n * theta[u, f])
            q[i, f] += lr * (e * pf - reg_i * qf)
    return sse


@njit
def word_counts(d_ptr, words, topics, n_topics, n_words):  # pragma: no cover - numba
    """Topic-word counts ``n[z, v]`` of the current assignments."""
    out = np.zeros((n_topics, n_words), dtype=np.float32)
    for t in range(words.shape[0]):
        out[topics[t], words[t]] += 1.0
    return out


@njit
def sample_topics(users, d_ptr, words, topics, theta, phi):  # pragma: no cover - numba
    """Draw every word's topic from ``p(z = k) ~ theta_{u,k} phi_{k,w}`` (one sweep)."""
    k = theta.shape[1]
    cum = np.empty(k, dtype=np.float64)
    for d in range(users.shape[0]):
        u = users[d]
        for t in range(d_ptr[d], d_ptr[d + 1]):
            w = words[t]
            s = 0.0
            for z in range(k):
                s += theta[u, z] * phi[z, w]
                cum[z] = s
            x = np.random.random() * s
            z = 0
            while z < k - 1 and cum[z] <= x:
                z += 1
            topics[t] = z


@pnjit
def softmax_rows(x, scale, out):  # pragma: no cover - numba
    """``out[r] = softmax(scale * x[r])`` for every row."""
    for r in prange(x.shape[0]):
        top = -np.inf
        for c in range(x.shape[1]):
            v = scale * x[r, c]
            if v > top:
                top = v
        s = 0.0
        for c in range(x.shape[1]):
            e = np.exp(scale * x[r, c] - top)
            out[r, c] = e
            s += e
        for c in range(x.shape[1]):
            out[r, c] /= s
