"""Numba SGD kernels for rating factorization (BiasedMF, PMF, SVD++, asymmetric SVD).

Every kernel runs one epoch over a pre-shuffled order. The order is cut into
``n_chunks`` contiguous pieces; the epochs are :func:`~recseek._numba.hogwild` kernels, which
run the pieces in order on one thread (deterministic) unless ``set_deterministic(False)``
lets threads process them in parallel without locks. Regularisation is applied only to the
parameters a rating touches (lazy regularisation).
"""

from __future__ import annotations

import math

import numpy as np

from ..._numba import hogwild, njit, pnjit, prange


@njit
def mf_epoch_range(
    lo, hi, users, items, ratings, order, p, q, bu, bi, mu, lr, reg_u, reg_i, reg_bu, reg_bi, use_bias
):  # pragma: no cover - numba
    """SGD of (biased) matrix factorisation over ``order[lo:hi]``; returns the squared error."""
    k = p.shape[1]
    loss = 0.0
    for t in range(lo, hi):
        s = order[t]
        u = users[s]
        i = items[s]
        pred = mu
        if use_bias:
            pred += bu[u] + bi[i]
        for f in range(k):
            pred += p[u, f] * q[i, f]
        e = ratings[s] - pred
        loss += e * e
        if use_bias:
            bu[u] += lr * (e - reg_bu * bu[u])
            bi[i] += lr * (e - reg_bi * bi[i])
        for f in range(k):
            pf = p[u, f]
            qf = q[i, f]
            p[u, f] = pf + lr * (e * qf - reg_u * pf)
            q[i, f] = qf + lr * (e * pf - reg_i * qf)
    return loss


@hogwild
def mf_epoch(
    users, items, ratings, order, p, q, bu, bi, mu, lr, reg_u, reg_i, reg_bu, reg_bi, use_bias, n_chunks
):  # pragma: no cover - numba
    """One epoch over ``n_chunks`` contiguous pieces of the order (in parallel without locks when not deterministic)."""
    n = order.shape[0]
    losses = np.zeros(n_chunks, dtype=np.float64)
    for c in prange(n_chunks):
        losses[c] = mf_epoch_range(c * n // n_chunks, (c + 1) * n // n_chunks, users, items, ratings, order,
                                   p, q, bu, bi, mu, lr, reg_u, reg_i, reg_bu, reg_bi, use_bias)
    return losses.sum()


@njit
def svdpp_epoch_range(
    lo, hi, indptr, indices, ratings, user_order, inner_order, p, q, y, bu, bi, mu, lr, reg_u, reg_i, reg_b, reg_y
):  # pragma: no cover - numba
    """One SGD epoch of SVD++ with users processed one at a time.

    Within a user, the implicit sum ``z = |N(u)|^-1/2 sum_j y_j`` and the pending updates of
    every ``y_j`` are tracked in O(k) per rating (all ``y_j`` of a user receive the same
    update, so a shared decay factor and accumulator reproduce per-rating SGD exactly);
    the ``y_j`` are written once at the end of the user.
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
        z[:] = 0.0
        for pp in range(a, b):
            j = indices[pp]
            for f in range(k):
                z[f] += y[j, f]
        for f in range(k):
            z[f] *= norm
            acc[f] = 0.0
        decay = np.float32(1.0)
        shrink = np.float32(1.0) - lr * reg_y
        for pp in range(a, b):
            s = inner_order[pp]
            i = indices[s]
            pred = mu + bu[u] + bi[i]
            for f in range(k):
                pred += (p[u, f] + z[f]) * q[i, f]
            e = ratings[s] - pred
            loss += e * e
            bu[u] += lr * (e - reg_b * bu[u])
            bi[i] += lr * (e - reg_b * bi[i])
            decay *= shrink
            for f in range(k):
                pf = p[u, f]
                qf = q[i, f]
                zf = z[f]
                p[u, f] = pf + lr * (e * qf - reg_u * pf)
                q[i, f] = qf + lr * (e * (pf + zf) - reg_i * qf)
                acc[f] = acc[f] * shrink + lr * e * norm * qf
                z[f] = zf * shrink + lr * e * qf
        for pp in range(a, b):
            j = indices[pp]
            for f in range(k):
                y[j, f] = decay * y[j, f] + acc[f]
    return loss


@hogwild
def svdpp_epoch(
    indptr, indices, ratings, user_order, inner_order, p, q, y, bu, bi, mu, lr, reg_u, reg_i, reg_b, reg_y, n_chunks
):  # pragma: no cover - numba
    """One epoch over ``n_chunks`` contiguous pieces of the user order (in parallel without locks when not deterministic)."""
    n = user_order.shape[0]
    losses = np.zeros(n_chunks, dtype=np.float64)
    for c in prange(n_chunks):
        losses[c] = svdpp_epoch_range(c * n // n_chunks, (c + 1) * n // n_chunks, indptr, indices, ratings,
                                      user_order, inner_order, p, q, y, bu, bi, mu, lr, reg_u, reg_i, reg_b, reg_y)
    return losses.sum()


@njit
def asvd_epoch_range(
    lo, hi, indptr, indices, ratings, user_order, inner_order, q, x, y, bu, bi, mu, lr, reg_b, reg_i, reg_x, reg_y
):  # pragma: no cover - numba
    """One SGD epoch of asymmetric SVD (users represented by their rated items only).

    The user vector is ``z = |R(u)|^-1/2 sum_j (c_j x_j + y_j)`` with residuals
    ``c_j = r_uj - mu - b_u - b_j`` fixed at the start of the user; pending updates of
    ``x_j`` and ``y_j`` are tracked with shared accumulators as in :func:`svdpp_epoch`.
    """
    k = q.shape[1]
    zx = np.zeros(k, dtype=np.float32)
    zy = np.zeros(k, dtype=np.float32)
    ax = np.zeros(k, dtype=np.float32)
    ay = np.zeros(k, dtype=np.float32)
    loss = 0.0
    for t in range(lo, hi):
        u = user_order[t]
        a = indptr[u]
        b = indptr[u + 1]
        if b == a:
            continue
        cnt = b - a
        norm = np.float32(1.0 / math.sqrt(cnt))
        zx[:] = 0.0
        zy[:] = 0.0
        csq = np.float32(0.0)
        cres = np.empty(cnt, dtype=np.float32)
        for pp in range(a, b):
            j = indices[pp]
            cj = ratings[pp] - mu - bu[u] - bi[j]
            cres[pp - a] = cj
            csq += cj * cj
            for f in range(k):
                zx[f] += cj * x[j, f]
                zy[f] += y[j, f]
        csq /= cnt
        for f in range(k):
            zx[f] *= norm
            zy[f] *= norm
            ax[f] = 0.0
            ay[f] = 0.0
        dx = np.float32(1.0)
        dy = np.float32(1.0)
        sx = np.float32(1.0) - lr * reg_x
        sy = np.float32(1.0) - lr * reg_y
        for pp in range(a, b):
            s = inner_order[pp]
            i = indices[s]
            pred = mu + bu[u] + bi[i]
            for f in range(k):
                pred += (zx[f] + zy[f]) * q[i, f]
            e = ratings[s] - pred
            loss += e * e
            bu[u] += lr * (e - reg_b * bu[u])
            bi[i] += lr * (e - reg_b * bi[i])
            dx *= sx
            dy *= sy
            for f in range(k):
                qf = q[i, f]
                q[i, f] = qf + lr * (e * (zx[f] + zy[f]) - reg_i * qf)
                ax[f] = ax[f] * sx + lr * e * norm * qf
                ay[f] = ay[f] * sy + lr * e * norm * qf
                zx[f] = zx[f] * sx + lr * e * qf * csq
                zy[f] = zy[f] * sy + lr * e * qf
        for pp in range(a, b):
            j = indices[pp]
            cj = cres[pp - a]
            for f in range(k):
                x[j, f] = dx * x[j, f] + cj * ax[f]
                y[j, f] = dy * y[j, f] + ay[f]
    return loss


@hogwild
def asvd_epoch(
    indptr, indices, ratings, user_order, inner_order, q, x, y, bu, bi, mu, lr, reg_b, reg_i, reg_x, reg_y, n_chunks
):  # pragma: no cover - numba
    """One epoch over ``n_chunks`` contiguous pieces of the user order (in parallel without locks when not deterministic)."""
    n = user_order.shape[0]
    losses = np.zeros(n_chunks, dtype=np.float64)
    for c in prange(n_chunks):
        losses[c] = asvd_epoch_range(c * n // n_chunks, (c + 1) * n // n_chunks, indptr, indices, ratings,
                                     user_order, inner_order, q, x, y, bu, bi, mu, lr, reg_b, reg_i, reg_x, reg_y)
    return losses.sum()


@pnjit
def implicit_sums(indptr, indices, ratings, y, x, base, use_x):  # pragma: no cover - numba
    """Per row ``|N(u)|^-1/2 sum_j (y_j + c_j x_j)`` with ``c_j = r_j - base_j`` (x optional)."""
    n = indptr.shape[0] - 1
    k = y.shape[1]
    out = np.zeros((n, k), dtype=np.float32)
    for u in prange(n):
        a = indptr[u]
        b = indptr[u + 1]
        if b == a:
            continue
        norm = np.float32(1.0 / math.sqrt(b - a))
        for pp in range(a, b):
            j = indices[pp]
            cj = ratings[pp] - base[pp]
            for f in range(k):
                v = y[j, f]
                if use_x:
                    v += cj * x[j, f]
                out[u, f] += v
        for f in range(k):
            out[u, f] *= norm
    return out


@njit
def fm_epoch(users, items, ratings, order, w0, p, q, bu, bi, lr, reg_w0, reg_w, reg_v, adagrad, gw0, gp, gq, gbu,
             gbi):  # pragma: no cover - numba
    """One SGD epoch of a two-field (user, item) factorisation machine.

    ``y = w0 + w_u + w_i + <p_u, q_i>`` with a learned global bias ``w0[0]``; with
    ``adagrad`` every parameter's step is divided by the root of its summed squared
    gradients (``g*`` accumulators), as in field-aware FM training.
    """
    k = p.shape[1]
    loss = 0.0
    eps = 1e-8
    for t in range(order.shape[0]):
        s = order[t]
        u = users[s]
        i = items[s]
        pred = w0[0] + bu[u] + bi[i]
        for f in range(k):
            pred += p[u, f] * q[i, f]
        e = ratings[s] - pred
        loss += e * e
        g = -e + reg_w0 * w0[0]
        if adagrad:
            gw0[0] += g * g
            w0[0] -= lr * g / math.sqrt(gw0[0] + eps)
        else:
            w0[0] -= lr * g
        g = -e + reg_w * bu[u]
        if adagrad:
            gbu[u] += g * g
            bu[u] -= lr * g / math.sqrt(gbu[u] + eps)
        else:
            bu[u] -= lr * g
        g = -e + reg_w * bi[i]
        if adagrad:
            gbi[i] += g * g
            bi[i] -= lr * g / math.sqrt(gbi[i] + eps)
        else:
            bi[i] -= lr * g
        for f in range(k):
            pf = p[u, f]
            qf = q[i, f]
            g1 = -e * qf + reg_v * pf
            g2 = -e * pf + reg_v * qf
            if adagrad:
                gp[u, f] += g1 * g1
                gq[i, f] += g2 * g2
                p[u, f] = pf - lr * g1 / math.sqrt(gp[u, f] + eps)
                q[i, f] = qf - lr * g2 / math.sqrt(gq[i, f] + eps)
            else:
                p[u, f] = pf - lr * g1
                q[i, f] = qf - lr * g2
    return loss


@njit
def ffm_epoch(users, items, ratings, order, uptr, uidx, uval, iptr, iidx, ival, field, ffm, w0, w, v, lr, reg_w0,
              reg_w, reg_v, adagrad, gw0, gw, gv):  # pragma: no cover - numba
    """One SGD epoch of a (field-aware) factorisation machine over sparse feature rows.

    A record's features are its user's row (``uptr/uidx/uval``: user id and user side
    features) and its item's row (item id and item side features). ``v`` has shape
    (n_features, n_latent, k): with ``ffm`` the latent slot of feature ``a`` towards ``b``
    is ``field[b]`` (field-aware), else 0 (plain FM). Prediction:
    ``w0 + sum_a w_a x_a + sum_{a<b} <v[a, l(b)], v[b, l(a)]> x_a x_b``. Squared loss with L2
    on the parameters a record touches; ``adagrad`` scales steps per parameter.
    """
    k = v.shape[2]
    n_lat = v.shape[1]
    max_u = 0
    for r in range(uptr.shape[0] - 1):
        max_u = max(max_u, uptr[r + 1] - uptr[r])
    max_i = 0
    for r in range(iptr.shape[0] - 1):
        max_i = max(max_i, iptr[r + 1] - iptr[r])
    cap = max_u + max_i
    feats = np.empty(cap, dtype=np.int64)
    vals = np.empty(cap, dtype=np.float32)
    grad = np.zeros((cap, n_lat, k), dtype=np.float32)
    touched = np.zeros((cap, n_lat), dtype=np.bool_)
    loss = 0.0
    eps = 1e-8
    for t in range(order.shape[0]):
        s = order[t]
        u = users[s]
        i = items[s]
        n = 0
        for p in range(uptr[u], uptr[u + 1]):
            feats[n] = uidx[p]
            vals[n] = uval[p]
            n += 1
        for p in range(iptr[i], iptr[i + 1]):
            feats[n] = iidx[p]
            vals[n] = ival[p]
            n += 1
        pred = w0[0]
        for a in range(n):
            pred += w[feats[a]] * vals[a]
        for a in range(n):
            ja = feats[a]
            la = field[ja] if ffm else 0
            for b in range(a + 1, n):
                jb = feats[b]
                lb = field[jb] if ffm else 0
                dot = 0.0
                for f in range(k):
                    dot += v[ja, lb, f] * v[jb, la, f]
                pred += dot * vals[a] * vals[b]
        e = ratings[s] - pred
        loss += e * e
        # gradients of the pairwise term (before any update)
        for a in range(n):
            for lat in range(n_lat):
                touched[a, lat] = False
                for f in range(k):
                    grad[a, lat, f] = 0.0
        for a in range(n):
            ja = feats[a]
            la = field[ja] if ffm else 0
            for b in range(a + 1, n):
                jb = feats[b]
                lb = field[jb] if ffm else 0
                xx = -e * vals[a] * vals[b]
                touched[a, lb] = True
                touched[b, la] = True
                for f in range(k):
                    grad[a, lb, f] += xx * v[jb, la, f]
                    grad[b, la, f] += xx * v[ja, lb, f]
        g = -e + reg_w0 * w0[0]
        if adagrad:
            gw0[0] += g * g
            w0[0] -= lr * g / math.sqrt(gw0[0] + eps)
        else:
            w0[0] -= lr * g
        for a in range(n):
            ja = feats[a]
            g = -e * vals[a] + reg_w * w[ja]
            if adagrad:
                gw[ja] += g * g
                w[ja] -= lr * g / math.sqrt(gw[ja] + eps)
            else:
                w[ja] -= lr * g
            for lat in range(n_lat):
                if not touched[a, lat]:
                    continue
                for f in range(k):
                    g = grad[a, lat, f] + reg_v * v[ja, lat, f]
                    if adagrad:
                        gv[ja, lat, f] += g * g
                        v[ja, lat, f] -= lr * g / math.sqrt(gv[ja, lat, f] + eps)
                    else:
                        v[ja, lat, f] -= lr * g
    return loss


@pnjit
def ffm_row_terms(ptr, idx, val, field, ffm, w, v):  # pragma: no cover - numba
    """Per row of a feature CSR: ``sum_a w_a x_a + sum_{a<b} <v[a, l(b)], v[b, l(a)]> x_a x_b``."""
    n_rows = ptr.shape[0] - 1
    k = v.shape[2]
    out = np.zeros(n_rows, dtype=np.float32)
    for r in prange(n_rows):
        acc = 0.0
        for a in range(ptr[r], ptr[r + 1]):
            ja = idx[a]
            acc += w[ja] * val[a]
            la = field[ja] if ffm else 0
            for b in range(a + 1, ptr[r + 1]):
                jb = idx[b]
                lb = field[jb] if ffm else 0
                dot = 0.0
                for f in range(k):
                    dot += v[ja, lb, f] * v[jb, la, f]
                acc += dot * val[a] * val[b]
        out[r] = acc
    return out
