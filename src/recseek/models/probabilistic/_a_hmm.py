"""Numba kernel of the HMM model: forward-backward over each user's time periods."""

from __future__ import annotations

import math

import numpy as np

from ..._numba import pnjit, prange


@pnjit(error_model="numpy")
def forward_backward(user_ptr, log_emit, log_pi, log_a, chunk_users):  # pragma: no cover - numba
    """Posterior state marginals of every period and the transition sums, per user.

    ``user_ptr`` (n_users + 1) delimits each user's periods (in time order) in
    ``log_emit`` (n_periods, S), the log-probability of each period's observation under
    each state. ``log_pi`` (S,) and ``log_a`` (S, S) are the log initial and transition
    probabilities. Returns ``(gamma (n_periods, S), xi (n_chunks, S, S), loglik (n_users,))``:
    ``gamma[t, z] = P(z_t = z | user's periods)``, ``xi[c]`` the sum over the users of chunk
    ``c`` (``chunk_users`` boundaries) of ``P(z_(t-1) = a, z_t = b | ...)``, and each
    user's log-likelihood. Scaled forward-backward in log space, users in parallel.
    """
    n_users = user_ptr.shape[0] - 1
    s = log_pi.shape[0]
    n_chunks = chunk_users.shape[0] - 1
    gamma = np.zeros(log_emit.shape, dtype=np.float64)
    xi = np.zeros((n_chunks, s, s), dtype=np.float64)
    ll = np.zeros(n_users, dtype=np.float64)
    a = np.exp(log_a)
    for c in prange(n_chunks):
        tmp = np.empty(s, dtype=np.float64)
        for u in range(chunk_users[c], chunk_users[c + 1]):
            lo, hi = user_ptr[u], user_ptr[u + 1]
            n = hi - lo
            if n == 0:
                continue
            fwd = np.empty((n, s), dtype=np.float64)
            bwd = np.empty((n, s), dtype=np.float64)
            scale = np.empty(n, dtype=np.float64)
            emit = np.empty((n, s), dtype=np.float64)
            # emissions scaled per period by their largest term
            for t in range(n):
                best = -np.inf
                for z in range(s):
                    if log_emit[lo + t, z] > best:
                        best = log_emit[lo + t, z]
                for z in range(s):
                    emit[t, z] = math.exp(log_emit[lo + t, z] - best)
                scale[t] = best
            total = 0.0
            for z in range(s):
                fwd[0, z] = math.exp(log_pi[z]) * emit[0, z]
                total += fwd[0, z]
            for z in range(s):
                fwd[0, z] /= total
            lsum = math.log(total) + scale[0]
            for t in range(1, n):
                total = 0.0
                for b in range(s):
                    v = 0.0
                    for z in range(s):
                        v += fwd[t - 1, z] * a[z, b]
                    fwd[t, b] = v * emit[t, b]
                    total += fwd[t, b]
                for b in range(s):
                    fwd[t, b] /= total
                lsum += math.log(total) + scale[t]
            ll[u] = lsum
            for z in range(s):
                bwd[n - 1, z] = 1.0
            for t in range(n - 2, -1, -1):
                norm = 0.0
                for z in range(s):
                    v = 0.0
                    for b in range(s):
                        v += a[z, b] * emit[t + 1, b] * bwd[t + 1, b]
                    tmp[z] = v
                    norm += v
                for z in range(s):
                    bwd[t, z] = tmp[z] / norm
            for t in range(n):
                g = 0.0
                for z in range(s):
                    g += fwd[t, z] * bwd[t, z]
                for z in range(s):
                    gamma[lo + t, z] = fwd[t, z] * bwd[t, z] / g
            for t in range(1, n):
                norm = 0.0
                for z in range(s):
                    for b in range(s):
                        norm += fwd[t - 1, z] * a[z, b] * emit[t, b] * bwd[t, b]
                for z in range(s):
                    for b in range(s):
                        xi[c, z, b] += fwd[t - 1, z] * a[z, b] * emit[t, b] * bwd[t, b] / norm
    return gamma, xi, ll
