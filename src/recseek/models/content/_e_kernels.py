"""numba kernels of the feature-aware ranking models VBPR and RankVFCD.

Item features arrive as CSR arrays ``(f_indptr, f_indices, f_data)`` of shape
(n_items, n_features), or their transpose (feature -> items) for the RankVFCD feature
step. Randomness follows :mod:`recseek.models.ranking._kernels`: one xorshift stream per
chunk of samples, seeded from ``(seed, epoch, chunk)``.
"""

from __future__ import annotations

import math

import numpy as np

from ..._numba import hogwild, pnjit, prange
from ..ranking._kernels import _below, _next, _sigmoid, _uniform_negative


# --------------------------------------------------------------------------- VBPR
@hogwild(fastmath=True, error_model="numpy")
def vbpr_epoch(U, V, b, T, E, w, f_indptr, f_indices, f_data, indptr, indices, pool_users, pool_items,
               active_users, n_samples, user_uniform, lr, reg, reg_bias, reg_feature, seeds):
    """One epoch of VBPR stochastic gradient ascent on ``ln sigmoid(x_ui - x_uj)``.

    ``x_ui = b_i + U_u.V_i + T_u.(E^T f_i) + w.f_i`` with ``U`` (n_users, K), ``V``
    (n_items, K), ``T`` (n_users, K'), ``E`` (n_features, K'), ``w`` (n_features,).
    Positives come from the pool uniformly (or a user uniformly, then one of the user's
    items, when ``user_uniform``); negatives are uniform items outside the user's row.
    Only the feature rows of ``E`` and entries of ``w`` that ``f_i - f_j`` touches are
    updated (and regularised) per sample. Returns the summed ``-ln sigmoid`` loss.
    """
    n_chunks = seeds.shape[0]
    n_items = V.shape[0]
    n_features = E.shape[0]
    k = U.shape[1]
    kv = T.shape[1]
    per = (n_samples + n_chunks - 1) // n_chunks
    losses = np.zeros(n_chunks, dtype=np.float64)
    n_pool = pool_users.shape[0]
    n_active = active_users.shape[0]
    for c in prange(n_chunks):
        x = seeds[c]
        delta = np.zeros(n_features, dtype=np.float32)
        mark = np.zeros(n_features, dtype=np.bool_)
        phi = np.zeros(kv, dtype=np.float32)
        start = c * per
        stop = min(n_samples, start + per)
        loss = 0.0
        for _ in range(start, stop):
            x = _next(x)
            if user_uniform:
                u = active_users[_below(x, n_active)]
                lo = indptr[u]
                cnt = indptr[u + 1] - lo
                x = _next(x)
                i = indices[lo + _below(x, cnt)]
            else:
                p = _below(x, n_pool)
                u = pool_users[p]
                i = pool_items[p]
                lo = indptr[u]
                cnt = indptr[u + 1] - lo
            if cnt >= n_items:
                continue
            x, j = _uniform_negative(x, n_items, indices, lo, cnt)
            if j < 0:
                continue
            # delta = f_i - f_j over the union of both supports
            for q in range(f_indptr[i], f_indptr[i + 1]):
                delta[f_indices[q]] += f_data[q]
                mark[f_indices[q]] = True
            for q in range(f_indptr[j], f_indptr[j + 1]):
                delta[f_indices[q]] -= f_data[q]
                mark[f_indices[q]] = True
            for f in range(kv):
                phi[f] = 0.0
            fb = np.float32(0.0)
            for side in range(2):
                a = i if side == 0 else j
                for q in range(f_indptr[a], f_indptr[a + 1]):
                    d = f_indices[q]
                    if not mark[d]:
                        continue
                    mark[d] = False
                    dv = delta[d]
                    fb += w[d] * dv
                    for f in range(kv):
                        phi[f] += E[d, f] * dv
            diff = b[i] - b[j] + fb
            for f in range(k):
                diff += U[u, f] * (V[i, f] - V[j, f])
            for f in range(kv):
                diff += T[u, f] * phi[f]
            g = np.float32(_sigmoid(-diff))
            loss -= math.log(max(_sigmoid(diff), 1e-30))
            # feature parameters (with the old T_u), touched entries only
            for side in range(2):
                a = i if side == 0 else j
                for q in range(f_indptr[a], f_indptr[a + 1]):
                    d = f_indices[q]
                    if mark[d]:
                        continue
                    mark[d] = True  # visited: marks are cleared below
                    dv = delta[d]
                    w[d] += lr * (g * dv - reg_feature * w[d])
                    for f in range(kv):
                        E[d, f] += lr * (g * T[u, f] * dv - reg_feature * E[d, f])
            for side in range(2):
                a = i if side == 0 else j
                for q in range(f_indptr[a], f_indptr[a + 1]):
                    d = f_indices[q]
                    mark[d] = False
                    delta[d] = 0.0
            for f in range(kv):
                t = T[u, f]
                T[u, f] = t + lr * (g * phi[f] - reg * t)
            for f in range(k):
                uf = U[u, f]
                vi = V[i, f]
                vj = V[j, f]
                U[u, f] = uf + lr * (g * (vi - vj) - reg * uf)
                V[i, f] = vi + lr * (g * uf - reg * vi)
                V[j, f] = vj + lr * (-g * uf - reg * vj)
            b[i] += lr * (g - reg_bias * b[i])
            b[j] += lr * (-g - reg_bias * b[j])
        losses[c] = loss
    return losses.sum()


@pnjit(error_model="numpy")
def project_items(f_indptr, f_indices, f_data, E, w):
    """``(F E, F w)``: every item's feature embedding (n_items, K') and feature bias."""
    n = f_indptr.shape[0] - 1
    kv = E.shape[1]
    out = np.zeros((n, kv), dtype=np.float32)
    bias = np.zeros(n, dtype=np.float32)
    for i in prange(n):
        for q in range(f_indptr[i], f_indptr[i + 1]):
            d = f_indices[q]
            v = f_data[q]
            bias[i] += w[d] * v
            for f in range(kv):
                out[i, f] += E[d, f] * v
    return out, bias


# --------------------------------------------------------------------------- RankVFCD
@pnjit(fastmath=True, error_model="numpy")
def vfcd_item_sweep(iu_indptr, iu_indices, iu_w, rel_indptr, rel_indices, rel_w, Q, P, Z, SP, SZ, prior,
                    reg, beta, gamma, bounds, max_users, max_related):  # pragma: no cover - numba
    """One coordinate sweep over the item factors ``Q`` (in place).

    Item ``i`` minimises ``sum_u c_ui (r_ui - P_u.q)^2 + reg |q|^2
    + beta sum_g d_ig (s_ig - q.Z_g)^2 + gamma |q - prior_i|^2``, where the first sum
    runs over every user (``c = iu_w`` on observed pairs, target 1; weight 1 and target
    0 elsewhere, through ``SP = P^T P``) and the second over every item ``g``
    (``d = rel_w`` on related pairs, target 1; weight 1 and target 0 elsewhere,
    through ``SZ = Z^T Z``). ``prior`` (n_items, K) is the feature projection F E.
    """
    d = Q.shape[1]
    for c in prange(bounds.shape[0] - 1):
        pu = np.empty(max(max_users, 1), dtype=np.float32)
        pg = np.empty(max(max_related, 1), dtype=np.float32)
        for i in range(bounds[c], bounds[c + 1]):
            us = iu_indptr[i]
            nu = iu_indptr[i + 1] - us
            gs = rel_indptr[i]
            ng = rel_indptr[i + 1] - gs
            for t in range(nu):
                u = iu_indices[us + t]
                s = np.float32(0.0)
                for f in range(d):
                    s += P[u, f] * Q[i, f]
                pu[t] = s
            for t in range(ng):
                g = rel_indices[gs + t]
                s = np.float32(0.0)
                for f in range(d):
                    s += Z[g, f] * Q[i, f]
                pg[t] = s
            for f in range(d):
                qf = Q[i, f]
                num_e = 0.0
                num_z = 0.0
                for k in range(d):
                    if k != f:
                        num_e -= Q[i, k] * SP[k, f]
                        num_z -= Q[i, k] * SZ[k, f]
                den_e = SP[f, f] + reg
                den_z = SZ[f, f]
                for t in range(nu):
                    y = P[iu_indices[us + t], f]
                    wt = iu_w[us + t]
                    partial = pu[t] - qf * y
                    num_e += (wt - (wt - 1.0) * partial) * y
                    den_e += (wt - 1.0) * y * y
                for t in range(ng):
                    y = Z[rel_indices[gs + t], f]
                    wt = rel_w[gs + t]
                    partial = pg[t] - qf * y
                    num_z += (wt - (wt - 1.0) * partial) * y
                    den_z += (wt - 1.0) * y * y
                den = den_e + beta * den_z + gamma
                new = (num_e + beta * num_z + gamma * prior[i, f]) / den if den > 0 else 0.0
                Q[i, f] = new
                step = new - qf
                for t in range(nu):
                    pu[t] += step * P[iu_indices[us + t], f]
                for t in range(ng):
                    pg[t] += step * Z[rel_indices[gs + t], f]


@pnjit(fastmath=True, error_model="numpy")
def vfcd_feature_sweep(ft_indptr, ft_indices, ft_data, E, Q, Y, sq_norms, gamma, reg_feature):  # pragma: no cover
    """One coordinate sweep over the feature factors ``E`` (n_features, K), in place.

    Minimises ``gamma sum_i |Q_i - E^T f_i|^2 + reg_feature |E|^2`` one entry at a time;
    ``Y = F E`` (n_items, K) is kept current, ``ft_*`` is F transposed (feature ->
    items) and ``sq_norms[d] = sum_i f_id^2``. Factors are independent, so they run in
    parallel (each touches its own column of ``E`` and ``Y``).
    """
    n_features = E.shape[0]
    for k in prange(E.shape[1]):
        for dd in range(n_features):
            lo = ft_indptr[dd]
            hi = ft_indptr[dd + 1]
            if hi == lo:
                E[dd, k] = 0.0
                continue
            old = E[dd, k]
            num = 0.0
            for q in range(lo, hi):
                i = ft_indices[q]
                v = ft_data[q]
                num += (Q[i, k] - (Y[i, k] - old * v)) * v
            new = gamma * num / (gamma * sq_norms[dd] + reg_feature)
            E[dd, k] = new
            step = new - old
            for q in range(lo, hi):
                Y[ft_indices[q], k] += step * ft_data[q]
