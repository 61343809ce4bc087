"""Numba kernels of the social models (full-gradient passes over ratings and trust links).

:func:`pair_gradient` is the workhorse of the batch-gradient models: for every stored
pair ``(r, c)`` of a CSR matrix it compares ``x = a_r . b_c`` (through the logistic
function when ``logistic``) with the stored target and adds the gradient of
``weight / 2 * (g(x) - t)^2`` to ``grad_a[r]`` and ``grad_b[c]``. Rows are cut into a
fixed number of chunks (independent of the thread count); each chunk writes its own
``grad_b`` slice, summed afterwards in chunk order, so the result does not depend on the
threads.
"""

from __future__ import annotations

import math

import numpy as np

from ..._numba import hogwild, njit, pnjit, prange
from ..ranking._kernels import _below, _contains, _next


@njit
def _sigmoid(x):  # pragma: no cover - numba
    if x >= 0:
        z = math.exp(-x)
        return 1.0 / (1.0 + z)
    z = math.exp(x)
    return z / (1.0 + z)


@pnjit
def pair_gradient(indptr, indices, targets, a, b, logistic, weight, reg_a, reg_b, grad_a, grad_b_parts):  # pragma: no cover - numba
    """Accumulate the squared-error gradient of every pair into ``grad_a`` and ``grad_b_parts[chunk]``.

    ``reg_a`` / ``reg_b`` add an L2 term per pair occurrence (frequency-weighted
    regularisation); returns the (unweighted) sum of squared errors.
    """
    n_chunks = grad_b_parts.shape[0]
    n = indptr.shape[0] - 1
    k = a.shape[1]
    one = np.float32(1.0)
    losses = np.zeros(n_chunks, dtype=np.float64)
    for c in prange(n_chunks):
        gb = grad_b_parts[c]
        gb[:, :] = 0.0
        lo = c * n // n_chunks
        hi = (c + 1) * n // n_chunks
        loss = 0.0
        for r in range(lo, hi):
            for p in range(indptr[r], indptr[r + 1]):
                col = indices[p]
                x = np.float32(0.0)
                for f in range(k):
                    x += a[r, f] * b[col, f]
                if logistic:
                    g = one / (one + np.float32(math.exp(-max(min(x, np.float32(30.0)), np.float32(-30.0)))))
                    e = g - targets[p]
                    d = e * g * (one - g)
                else:
                    e = x - targets[p]
                    d = e
                loss += e * e
                d *= weight
                for f in range(k):
                    ar = a[r, f]
                    bc = b[col, f]
                    grad_a[r, f] += d * bc + reg_a * ar
                    gb[col, f] += d * ar + reg_b * bc
        losses[c] = loss
    total = 0.0
    for c in range(n_chunks):  # in chunk order (an array sum would be a parallel reduction)
        total += losses[c]
    return total


@pnjit
def rste_gradient(indptr, indices, targets, u, v, t_indptr, t_indices, t_weights, alpha, grad_u, grad_v_parts, social):  # pragma: no cover - numba
    """RSTE: ``r(u, i) ~ g(alpha u_u.v_i + (1 - alpha) sum_t w_ut u_t.v_i)`` with row-normalised ``w``.

    Adds the gradient of ``1/2 sum (g(x) - r)^2`` to ``grad_u`` (own factors) and to
    ``social`` (n_users, k: the part that flows to the trusted users' factors, pushed by
    the caller through the trust graph) and ``grad_v_parts[chunk]``.
    """
    n_chunks = grad_v_parts.shape[0]
    n = indptr.shape[0] - 1
    k = u.shape[1]
    losses = np.zeros(n_chunks, dtype=np.float64)
    for c in prange(n_chunks):
        gv = grad_v_parts[c]
        gv[:, :] = 0.0
        z = np.zeros(k, dtype=np.float64)
        lo = c * n // n_chunks
        hi = (c + 1) * n // n_chunks
        loss = 0.0
        for r in range(lo, hi):
            if indptr[r + 1] == indptr[r]:
                continue
            for f in range(k):
                z[f] = 0.0
            for q in range(t_indptr[r], t_indptr[r + 1]):
                t = t_indices[q]
                w = t_weights[q]
                for f in range(k):
                    z[f] += w * u[t, f]
            for p in range(indptr[r], indptr[r + 1]):
                i = indices[p]
                x = 0.0
                for f in range(k):
                    x += (alpha * u[r, f] + (1.0 - alpha) * z[f]) * v[i, f]
                g = _sigmoid(x)
                e = g - targets[p]
                loss += e * e
                d = e * g * (1.0 - g)
                for f in range(k):
                    vi = v[i, f]
                    grad_u[r, f] += alpha * d * vi
                    social[r, f] += (1.0 - alpha) * d * vi
                    gv[i, f] += d * (alpha * u[r, f] + (1.0 - alpha) * z[f])
        losses[c] = loss
    total = 0.0
    for c in range(n_chunks):  # in chunk order (an array sum would be a parallel reduction)
        total += losses[c]
    return total


@njit
def trustsvd_range(lo, hi, user_order, indptr, indices, ratings, inner_order, t_indptr, t_indices, t_values,
                   p, q, y, w, bu, bi, mu, lr, reg, reg_social, item_w, trustee_w):  # pragma: no cover - numba
    """One SGD pass of TrustSVD over the users ``user_order[lo:hi]``.

    Per user: every rating updates ``b_u, b_j, p_u, q_j`` (regularisation weighted by
    ``|I_u|^-1/2`` and ``|U_j|^-1/2`` as in the paper); the gradient of the implicit
    item factors ``y_i`` and trustee factors ``w_v`` is gathered over the user's ratings
    and applied once at the end of the user; then every trust link ``(u, v)`` takes an
    SGD step of ``reg_social / 2 (w_v . p_u - t_uv)^2``.
    """
    k = p.shape[1]
    zy = np.zeros(k, dtype=np.float32)
    zw = np.zeros(k, dtype=np.float32)
    acc = np.zeros(k, dtype=np.float32)
    loss = 0.0
    for t in range(lo, hi):
        u = user_order[t]
        a = indptr[u]
        b = indptr[u + 1]
        ta = t_indptr[u]
        tb = t_indptr[u + 1]
        if b == a and tb == ta:
            continue
        ny = np.float32(1.0 / math.sqrt(b - a)) if b > a else np.float32(0.0)
        nw = np.float32(1.0 / math.sqrt(tb - ta)) if tb > ta else np.float32(0.0)
        for f in range(k):
            zy[f] = 0.0
            zw[f] = 0.0
            acc[f] = 0.0
        for pp in range(a, b):
            j = indices[pp]
            for f in range(k):
                zy[f] += y[j, f]
        for pp in range(ta, tb):
            v = t_indices[pp]
            for f in range(k):
                zw[f] += w[v, f]
        for f in range(k):
            zy[f] *= ny
            zw[f] *= nw
        for pp in range(a, b):
            s = inner_order[pp]
            j = indices[s]
            pred = mu + bu[u] + bi[j]
            for f in range(k):
                pred += (p[u, f] + zy[f] + zw[f]) * q[j, f]
            e = pred - ratings[s]
            loss += e * e
            bu[u] -= lr * (e + reg * ny * bu[u])
            bi[j] -= lr * (e + reg * item_w[j] * bi[j])
            for f in range(k):
                pf = p[u, f]
                qf = q[j, f]
                acc[f] += e * qf
                p[u, f] = pf - lr * (e * qf + (reg * ny + reg_social * nw) * pf)
                q[j, f] = qf - lr * (e * (pf + zy[f] + zw[f]) + reg * item_w[j] * qf)
        if b > a:
            for pp in range(a, b):
                j = indices[pp]
                for f in range(k):
                    y[j, f] -= lr * (ny * acc[f] + reg * item_w[j] * y[j, f])
            for pp in range(ta, tb):
                v = t_indices[pp]
                for f in range(k):
                    w[v, f] -= lr * (nw * acc[f] + reg * trustee_w[v] * w[v, f])
        for pp in range(ta, tb):
            v = t_indices[pp]
            x = 0.0
            for f in range(k):
                x += w[v, f] * p[u, f]
            e = x - t_values[pp]
            loss += reg_social * e * e
            for f in range(k):
                pf = p[u, f]
                wf = w[v, f]
                p[u, f] = pf - lr * reg_social * e * wf
                w[v, f] = wf - lr * reg_social * e * pf
    return loss


@hogwild
def trustsvd_epoch(user_order, indptr, indices, ratings, inner_order, t_indptr, t_indices, t_values,
                   p, q, y, w, bu, bi, mu, lr, reg, reg_social, item_w, trustee_w, n_chunks):  # pragma: no cover - numba
    """One TrustSVD epoch over ``n_chunks`` contiguous pieces of the user order."""
    n = user_order.shape[0]
    losses = np.zeros(n_chunks, dtype=np.float64)
    for c in prange(n_chunks):
        losses[c] = trustsvd_range(c * n // n_chunks, (c + 1) * n // n_chunks, user_order, indptr, indices,
                                   ratings, inner_order, t_indptr, t_indices, t_values, p, q, y, w, bu, bi, mu,
                                   lr, reg, reg_social, item_w, trustee_w)
    return losses.sum()


@hogwild(fastmath=True, error_model="numpy")
def sbpr_epoch(U, V, b, indptr, indices, s_indptr, s_indices, s_counts, active, n_samples, lr, reg_u, reg_i, reg_b,
               seeds):  # pragma: no cover - numba
    """One epoch of SBPR stochastic gradient ascent; returns the summed loss ``-ln sigmoid(.)`` of its draws.

    A user is drawn uniformly from ``active``, then a positive ``i`` of the user; when the
    user has social items (rows of ``s_indptr``/``s_indices``: items their friends took
    that they did not, ``s_counts`` friends each) one of them ``k`` is drawn and a
    negative ``j`` outside both sets, and ``ln sigmoid((x_ui - x_uk) / (1 + s_uk)) +
    ln sigmoid(x_uk - x_uj)`` takes a step; otherwise the BPR pair ``(i, j)`` does.
    """
    n_chunks = seeds.shape[0]
    n_items = V.shape[0]
    k = U.shape[1]
    per = (n_samples + n_chunks - 1) // n_chunks
    done = np.zeros(n_chunks, dtype=np.float64)
    n_active = active.shape[0]
    one = np.float32(1.0)
    for c in prange(n_chunks):
        x = seeds[c]
        start = c * per
        stop = min(n_samples, start + per)
        total = 0.0
        for _ in range(start, stop):
            x = _next(x)
            u = active[_below(x, n_active)]
            lo = indptr[u]
            cnt = indptr[u + 1] - lo
            x = _next(x)
            i = indices[lo + _below(x, cnt)]
            slo = s_indptr[u]
            scnt = s_indptr[u + 1] - slo
            if cnt + scnt >= n_items:
                continue
            j = -1
            for _try in range(64):
                x = _next(x)
                cand = _below(x, n_items)
                if not _contains(indices, lo, lo + cnt, cand) and not _contains(s_indices, slo, slo + scnt, cand):
                    j = cand
                    break
            if j < 0:
                continue
            if scnt > 0:
                x = _next(x)
                pos = slo + _below(x, scnt)
                kk = s_indices[pos]
                w = one / (one + np.float32(s_counts[pos]))
                xi = b[i]
                xk = b[kk]
                xj = b[j]
                for f in range(k):
                    xi += U[u, f] * V[i, f]
                    xk += U[u, f] * V[kk, f]
                    xj += U[u, f] * V[j, f]
                g1 = np.float32(_sigmoid(-(xi - xk) * w))
                g2 = np.float32(_sigmoid(-(xk - xj)))
                total -= math.log(max(1.0 - g1, 1e-30)) + math.log(max(1.0 - g2, 1e-30))
                b[i] += lr * (g1 * w - reg_b * b[i])
                b[kk] += lr * (g2 - g1 * w - reg_b * b[kk])
                b[j] += lr * (-g2 - reg_b * b[j])
                for f in range(k):
                    pu = U[u, f]
                    qi = V[i, f]
                    qk = V[kk, f]
                    qj = V[j, f]
                    U[u, f] = pu + lr * (g1 * w * (qi - qk) + g2 * (qk - qj) - reg_u * pu)
                    V[i, f] = qi + lr * (g1 * w * pu - reg_i * qi)
                    V[kk, f] = qk + lr * ((g2 - g1 * w) * pu - reg_i * qk)
                    V[j, f] = qj + lr * (-g2 * pu - reg_i * qj)
            else:
                d = b[i] - b[j]
                for f in range(k):
                    d += U[u, f] * (V[i, f] - V[j, f])
                g = np.float32(_sigmoid(-d))
                total -= math.log(max(1.0 - g, 1e-30))
                b[i] += lr * (g - reg_b * b[i])
                b[j] += lr * (-g - reg_b * b[j])
                for f in range(k):
                    pu = U[u, f]
                    qi = V[i, f]
                    qj = V[j, f]
                    U[u, f] = pu + lr * (g * (qi - qj) - reg_u * pu)
                    V[i, f] = qi + lr * (g * pu - reg_i * qi)
                    V[j, f] = qj + lr * (-g * pu - reg_i * qj)
        done[c] = total
    out = 0.0
    for c in range(n_chunks):
        out += done[c]
    return out
