"""Numba kernels of the explicit factor models (EFMRating, EFMRanking): one sweep of
multiplicative updates over V, U1, U2, H1, H2."""

from __future__ import annotations

import numpy as np

from ..._numba import njit, pnjit, prange

_EPS = 1e-8


@njit(inline="always")
def _dot(a, b):  # pragma: no cover - numba
    s = np.float32(0.0)
    for k in range(a.shape[0]):
        s += a[k] * b[k]
    return s


@pnjit
def efm_sweep(r_ptr, r_idx, r_val, c_ptr, c_idx, c_val,
              x_ptr, x_idx, x_val, xt_ptr, xt_idx, xt_val,
              y_ptr, y_idx, y_val, yt_ptr, yt_idx, yt_val,
              v, u1, u2, h1, h2, lam_x, lam_y, lam_u, lam_h, lam_v):  # pragma: no cover - numba
    """One sweep of the multiplicative updates of Zhang et al. (2014).

    ``r_*`` is the users x items rating CSR, ``c_*`` its items x users transpose; ``x_*``
    the users x aspects attention matrix X (``xt_*`` its transpose), ``y_*`` the items x
    aspects quality matrix Y (``yt_*``). Every update is ``theta <- theta *
    sqrt(numerator / denominator)``; predictions inside one block are taken before the
    block's update, as in the derivation of the rule.
    """
    n_feat, r = v.shape
    n_users = u1.shape[0]
    n_items = u2.shape[0]
    rh = h1.shape[1]
    # V: one aspect at a time (rows of V are independent given U1, U2)
    for f in prange(n_feat):
        ulo, uhi = xt_ptr[f], xt_ptr[f + 1]
        ilo, ihi = yt_ptr[f], yt_ptr[f + 1]
        if uhi == ulo or ihi == ilo:
            continue
        upred = np.empty(uhi - ulo, dtype=np.float32)
        ipred = np.empty(ihi - ilo, dtype=np.float32)
        for p in range(ulo, uhi):
            upred[p - ulo] = _dot(u1[xt_idx[p]], v[f])
        for p in range(ilo, ihi):
            ipred[p - ilo] = _dot(u2[yt_idx[p]], v[f])
        for k in range(r):
            num_u = 0.0
            den_u = 0.0
            for p in range(ulo, uhi):
                a = u1[xt_idx[p], k]
                num_u += a * xt_val[p]
                den_u += a * upred[p - ulo]
            num_i = 0.0
            den_i = 0.0
            for p in range(ilo, ihi):
                a = u2[yt_idx[p], k]
                num_i += a * yt_val[p]
                den_i += a * ipred[p - ilo]
            num = lam_x * num_u + lam_y * num_i
            den = lam_x * den_u + lam_y * den_i + lam_v * v[f, k] + _EPS
            v[f, k] = v[f, k] * np.sqrt(num / den)
    # U1: explicit user factors, fitted to the ratings and to X
    for u in prange(n_users):
        lo, hi = r_ptr[u], r_ptr[u + 1]
        alo, ahi = x_ptr[u], x_ptr[u + 1]
        if hi == lo or ahi == alo:
            continue
        pred = np.empty(hi - lo, dtype=np.float32)
        for p in range(lo, hi):
            j = r_idx[p]
            pred[p - lo] = _dot(u1[u], u2[j]) + _dot(h1[u], h2[j])
        apred = np.empty(ahi - alo, dtype=np.float32)
        for p in range(alo, ahi):
            apred[p - alo] = _dot(u1[u], v[x_idx[p]])
        for k in range(r):
            num = 0.0
            den = 0.0
            for p in range(lo, hi):
                a = u2[r_idx[p], k]
                num += a * r_val[p]
                den += a * pred[p - lo]
            num_a = 0.0
            den_a = 0.0
            for p in range(alo, ahi):
                a = v[x_idx[p], k]
                num_a += a * x_val[p]
                den_a += a * apred[p - alo]
            u1[u, k] = u1[u, k] * np.sqrt((num + lam_x * num_a) / (den + lam_x * den_a + lam_u * u1[u, k] + _EPS))
    # U2: explicit item factors, fitted to the ratings and to Y
    for i in prange(n_items):
        lo, hi = c_ptr[i], c_ptr[i + 1]
        alo, ahi = y_ptr[i], y_ptr[i + 1]
        if hi == lo or ahi == alo:
            continue
        pred = np.empty(hi - lo, dtype=np.float32)
        for p in range(lo, hi):
            w = c_idx[p]
            pred[p - lo] = _dot(u1[w], u2[i]) + _dot(h1[w], h2[i])
        apred = np.empty(ahi - alo, dtype=np.float32)
        for p in range(alo, ahi):
            apred[p - alo] = _dot(u2[i], v[y_idx[p]])
        for k in range(r):
            num = 0.0
            den = 0.0
            for p in range(lo, hi):
                a = u1[c_idx[p], k]
                num += a * c_val[p]
                den += a * pred[p - lo]
            num_a = 0.0
            den_a = 0.0
            for p in range(alo, ahi):
                a = v[y_idx[p], k]
                num_a += a * y_val[p]
                den_a += a * apred[p - alo]
            u2[i, k] = u2[i, k] * np.sqrt((num + lam_y * num_a) / (den + lam_y * den_a + lam_u * u2[i, k] + _EPS))
    # H1, H2: hidden factors, fitted to the ratings only
    for u in prange(n_users):
        lo, hi = r_ptr[u], r_ptr[u + 1]
        if hi == lo:
            continue
        pred = np.empty(hi - lo, dtype=np.float32)
        for p in range(lo, hi):
            j = r_idx[p]
            pred[p - lo] = _dot(u1[u], u2[j]) + _dot(h1[u], h2[j])
        for k in range(rh):
            num = 0.0
            den = 0.0
            for p in range(lo, hi):
                a = h2[r_idx[p], k]
                num += a * r_val[p]
                den += a * pred[p - lo]
            h1[u, k] = h1[u, k] * np.sqrt(num / (den + lam_h * h1[u, k] + _EPS))
    for i in prange(n_items):
        lo, hi = c_ptr[i], c_ptr[i + 1]
        if hi == lo:
            continue
        pred = np.empty(hi - lo, dtype=np.float32)
        for p in range(lo, hi):
            w = c_idx[p]
            pred[p - lo] = _dot(u1[w], u2[i]) + _dot(h1[w], h2[i])
        for k in range(rh):
            num = 0.0
            den = 0.0
            for p in range(lo, hi):
                a = h1[c_idx[p], k]
                num += a * c_val[p]
                den += a * pred[p - lo]
            h2[i, k] = h2[i, k] * np.sqrt(num / (den + lam_h * h2[i, k] + _EPS))
    # objective: squared errors of R, X and Y (serial loops, so the sum is reproducible)
    loss = 0.0
    for u in range(n_users):
        for p in range(r_ptr[u], r_ptr[u + 1]):
            j = r_idx[p]
            e = r_val[p] - _dot(u1[u], u2[j]) - _dot(h1[u], h2[j])
            loss += e * e
        for p in range(x_ptr[u], x_ptr[u + 1]):
            e = x_val[p] - _dot(u1[u], v[x_idx[p]])
            loss += lam_x * e * e
    for i in range(n_items):
        for p in range(y_ptr[i], y_ptr[i + 1]):
            e = y_val[p] - _dot(u2[i], v[y_idx[p]])
            loss += lam_y * e * e
    # (the L2 penalties are added by the caller: array reductions here would run in parallel,
    # in an order that changes with the thread count)
    return loss
