"""numba kernels of the SGD ranking factorization models.

Every kernel works on float32 factor matrices in place.  Randomness comes from one
xorshift64 stream per chunk of work, seeded from ``(seed, epoch, chunk)``; the chunk count
depends on the work only.  The epochs are :func:`~recseek._numba.hogwild` kernels: by default
they process the chunks in order on one thread, so a seed reproduces a run exactly whatever
the thread count; after ``set_deterministic(False)`` threads update shared rows without locks.
"""

from __future__ import annotations

import math

import numpy as np

from ..._numba import hogwild, njit, pnjit, prange

_M1 = np.uint64(0x9E3779B97F4A7C15)
_M2 = np.uint64(0xBF58476D1CE4E5B9)
_M3 = np.uint64(0x94D049BB133111EB)


def chunk_seeds(seed: int, epoch: int, n_chunks: int) -> np.ndarray:
    """Non-zero uint64 states, one per chunk, from (seed, epoch, chunk) via splitmix64."""
    with np.errstate(over="ignore"):
        x = (np.uint64(seed) * _M1 + np.uint64(epoch + 1) * _M2
             + (np.arange(n_chunks, dtype=np.uint64) + np.uint64(1)) * _M3)
        x ^= x >> np.uint64(30)
        x *= _M2
        x ^= x >> np.uint64(27)
        x *= _M3
        x ^= x >> np.uint64(31)
    x[x == 0] = np.uint64(0x2545F4914F6CDD1D)
    return x


@njit(error_model="numpy")
def _next(x):
    x ^= x << np.uint64(13)
    x ^= x >> np.uint64(7)
    x ^= x << np.uint64(17)
    return x


@njit(error_model="numpy")
def _below(x, n):
    """An integer in [0, n) from the high 32 bits of state ``x`` (n < 2**32)."""
    return np.int64(((x >> np.uint64(32)) * np.uint64(n)) >> np.uint64(32))


@njit(error_model="numpy")
def _uniform(x):
    """A float in [0, 1) from state ``x``."""
    return np.float64(x >> np.uint64(11)) * (1.0 / 9007199254740992.0)


@njit(error_model="numpy")
def _contains(indices, lo, hi, j):
    """Whether sorted ``indices[lo:hi]`` holds ``j`` (binary search)."""
    while lo < hi:
        mid = (lo + hi) >> 1
        v = indices[mid]
        if v < j:
            lo = mid + 1
        elif v > j:
            hi = mid
        else:
            return True
    return False


@njit(error_model="numpy")
def _search_cdf(cdf, r):
    """First position whose cumulative weight exceeds ``r``."""
    lo = 0
    hi = cdf.shape[0] - 1
    while lo < hi:
        mid = (lo + hi) >> 1
        if cdf[mid] > r:
            hi = mid
        else:
            lo = mid + 1
    return lo


@njit(error_model="numpy")
def _sigmoid(x):
    if x >= 0:
        return 1.0 / (1.0 + math.exp(-x))
    e = math.exp(x)
    return e / (1.0 + e)


# --------------------------------------------------------------------------- BPR
@njit(error_model="numpy", inline="always")
def _uniform_negative(x, n_items, indices, lo, cnt):
    """A uniformly drawn item outside ``indices[lo:lo+cnt]`` (sorted), by rejection.

    Returns (state, item), item -1 when 64 draws all hit the user's own items.
    """
    for _t in range(64):
        x = _next(x)
        cand = _below(x, n_items)
        if not _contains(indices, lo, lo + cnt, cand):
            return x, cand
    return x, -1


@njit(error_model="numpy", inline="always")
def _pair_step(U, V, b, u, i, j, g, lr, reg_u, reg_i, reg_b, use_bias):
    """One pairwise SGD step raising item i over item j for user u with gradient scale g."""
    for f in range(U.shape[1]):
        uf = U[u, f]
        vi = V[i, f]
        vj = V[j, f]
        U[u, f] = uf + lr * (g * (vi - vj) - reg_u * uf)
        V[i, f] = vi + lr * (g * uf - reg_i * vi)
        V[j, f] = vj + lr * (-g * uf - reg_i * vj)
    if use_bias:
        b[i] += lr * (g - reg_b * b[i])
        b[j] += lr * (-g - reg_b * b[j])


@hogwild(fastmath=True, error_model="numpy")
def bpr_epoch(U, V, b, indptr, indices, pool_users, pool_items, active_users, n_samples,
              user_uniform, lr, reg_u, reg_i, reg_b, use_bias, seeds):
    """One epoch of BPR-Opt stochastic gradient ascent; returns the number of updates.

    Positives come from the pool ``(pool_users[p], pool_items[p])`` uniformly, or, when
    ``user_uniform``, a user uniformly from ``active_users`` and then one of the user's
    items. Negatives are uniform items rejected while the user's row holds them.
    """
    n_chunks = seeds.shape[0]
    n_items = V.shape[0]
    k = U.shape[1]
    per = (n_samples + n_chunks - 1) // n_chunks
    done = np.zeros(n_chunks, dtype=np.int64)
    n_pool = pool_users.shape[0]
    n_active = active_users.shape[0]
    for c in prange(n_chunks):
        x = seeds[c]
        start = c * per
        stop = min(n_samples, start + per)
        updates = 0
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
            diff = np.float32(0.0)
            for f in range(k):
                diff += U[u, f] * (V[i, f] - V[j, f])
            if use_bias:
                diff += b[i] - b[j]
            z = np.float32(_sigmoid(-diff))
            updates += 1
            _pair_step(U, V, b, u, i, j, z, lr, reg_u, reg_i, reg_b, use_bias)
        done[c] = updates
    return done.sum()


# --------------------------------------------------------------------------- pairwise (WBPR, AoBPR, RankSGD, WARP)
#: negative samplers of :func:`pairwise_epoch`
NEG_UNIFORM = 0
NEG_CDF = 1  # proportional to a weight (cumulative distribution ``cdf`` over ``cdf_items``)
NEG_ADAPTIVE = 2  # AoBPR: factor chosen by |u_f| var_f, rank by a geometric law
#: losses of :func:`pairwise_epoch`
LOSS_LOGISTIC = 0  # BPR: -ln sigmoid(x_ui - x_uj)
LOSS_SQUARED = 1  # RankSGD: ((x_ui - x_uj) - (r_ui - 0))^2 / 2
LOSS_WARP = 2  # WARP: rank-weighted hinge max(0, margin - x_ui + x_uj)


@njit(error_model="numpy")
def _dot_bias(U, V, b, use_bias, u, i):
    s = np.float32(0.0)
    for f in range(U.shape[1]):
        s += U[u, f] * V[i, f]
    if use_bias:
        s += b[i]
    return s


@njit(error_model="numpy")
def _draw_negative(x, mode, n_items, indices, lo, cnt, cdf, cdf_items, U, u, ranks, factor_cdf_w, rank_cdf):
    """Draw one negative by ``mode``; returns (state, item or -1 when none was found)."""
    for _t in range(64):
        x = _next(x)
        if mode == NEG_UNIFORM:
            cand = _below(x, n_items)
        elif mode == NEG_CDF:
            cand = cdf_items[_search_cdf(cdf, _uniform(x) * cdf[cdf.shape[0] - 1])]
        else:
            k = U.shape[1]
            # factor f with probability proportional to |u_f| * var_f
            total = 0.0
            for f in range(k):
                total += abs(U[u, f]) * factor_cdf_w[f]
            if total <= 0.0:
                cand = _below(x, n_items)
            else:
                r = _uniform(x) * total
                f = 0
                acc = abs(U[u, 0]) * factor_cdf_w[0]
                while acc <= r and f < k - 1:
                    f += 1
                    acc += abs(U[u, f]) * factor_cdf_w[f]
                x = _next(x)
                rank = _search_cdf(rank_cdf, _uniform(x) * rank_cdf[rank_cdf.shape[0] - 1])
                if U[u, f] > 0:
                    cand = ranks[f, rank]
                else:
                    cand = ranks[f, n_items - 1 - rank]
        if not _contains(indices, lo, lo + cnt, cand):
            return x, cand
    return x, -1


@hogwild(error_model="numpy")
def pairwise_epoch(U, V, b, indptr, indices, values, pool_pos, n_samples, loss_kind, neg_mode,
                   lr, reg_u, reg_i, reg_b, use_bias, cdf, cdf_items, ranks, factor_w, rank_cdf,
                   margin, max_trials, rank_weights, seeds):
    """One epoch of pairwise SGD over positives drawn uniformly from ``pool_pos``
    (positions into ``indices``; the user of a position is found by binary search in
    ``indptr``). ``n_samples <= 0`` means one pass over ``pool_pos`` in shuffled chunk
    order. Returns the summed loss."""
    n_chunks = seeds.shape[0]
    n_items = V.shape[0]
    n_users = indptr.shape[0] - 1
    n_pool = pool_pos.shape[0]
    sweep = n_samples <= 0
    total = n_pool if sweep else n_samples
    per = (total + n_chunks - 1) // n_chunks
    losses = np.zeros(n_chunks)
    for c in prange(n_chunks):
        x = seeds[c]
        start = c * per
        stop = min(total, start + per)
        loss = 0.0
        for s in range(start, stop):
            x = _next(x)
            if sweep:
                p = pool_pos[s]
            else:
                p = pool_pos[_below(x, n_pool)]
            # the user owning position p
            lo_u = 0
            hi_u = n_users
            while hi_u - lo_u > 1:
                mid = (lo_u + hi_u) >> 1
                if indptr[mid] <= p:
                    lo_u = mid
                else:
                    hi_u = mid
            u = lo_u
            i = indices[p]
            lo = indptr[u]
            cnt = indptr[u + 1] - lo
            if cnt >= n_items:
                continue
            xi = _dot_bias(U, V, b, use_bias, u, i)
            weight = np.float32(1.0)
            if loss_kind == LOSS_WARP:
                y = n_items - cnt
                j = -1
                trials = 0
                limit = min(max_trials, y)
                while trials < limit:
                    trials += 1
                    x, cand = _draw_negative(x, neg_mode, n_items, indices, lo, cnt, cdf, cdf_items, U, u,
                                             ranks, factor_w, rank_cdf)
                    if cand < 0:
                        break
                    if _dot_bias(U, V, b, use_bias, u, cand) > xi - margin:
                        j = cand
                        break
                if j < 0:
                    continue
                est = (y - 1) // trials
                weight = rank_weights[min(est, rank_weights.shape[0] - 1)]
                xj = _dot_bias(U, V, b, use_bias, u, j)
                loss += weight * (margin - xi + xj)
                g = weight
            else:
                x, j = _draw_negative(x, neg_mode, n_items, indices, lo, cnt, cdf, cdf_items, U, u,
                                      ranks, factor_w, rank_cdf)
                if j < 0:
                    continue
                xj = _dot_bias(U, V, b, use_bias, u, j)
                diff = xi - xj
                if loss_kind == LOSS_LOGISTIC:
                    g = np.float32(_sigmoid(-diff))
                    loss += math.log1p(math.exp(-diff)) if diff > -30.0 else -diff
                else:
                    err = diff - values[p]
                    loss += 0.5 * err * err
                    g = -err
            _pair_step(U, V, b, u, i, j, g, lr, reg_u, reg_i, reg_b, use_bias)
        losses[c] = loss
    return losses.sum()


# --------------------------------------------------------------------------- GBPR
@hogwild(error_model="numpy")
def gbpr_epoch(U, V, b, indptr, indices, col_ptr, col_users, active_users, n_samples, group_size, rho,
               lr, reg_u, reg_i, reg_b, seeds):
    """One epoch of GBPR: the preference of a group of users who liked item i (the user
    plus ``group_size - 1`` others) blended with the user's own by ``rho``."""
    n_chunks = seeds.shape[0]
    n_items = V.shape[0]
    k = U.shape[1]
    n_active = active_users.shape[0]
    per = (n_samples + n_chunks - 1) // n_chunks
    losses = np.zeros(n_chunks)
    for c in prange(n_chunks):
        x = seeds[c]
        group = np.empty(group_size, dtype=np.int64)
        gsum = np.empty(k, dtype=np.float32)
        start = c * per
        stop = min(n_samples, start + per)
        loss = 0.0
        for _ in range(start, stop):
            x = _next(x)
            u = active_users[_below(x, n_active)]
            lo = indptr[u]
            cnt = indptr[u + 1] - lo
            if cnt >= n_items:
                continue
            x = _next(x)
            i = indices[lo + _below(x, cnt)]
            # the group: u plus distinct other users who interacted with i
            clo = col_ptr[i]
            ccnt = col_ptr[i + 1] - clo
            group[0] = u
            g = 1
            want = min(group_size, ccnt)
            tries = 0
            while g < want and tries < 8 * group_size:
                tries += 1
                x = _next(x)
                w = col_users[clo + _below(x, ccnt)]
                dup = False
                for t in range(g):
                    if group[t] == w:
                        dup = True
                        break
                if not dup:
                    group[g] = w
                    g += 1
            x, j = _uniform_negative(x, n_items, indices, lo, cnt)
            if j < 0:
                continue
            inv = np.float32(1.0 / g)
            for f in range(k):
                gsum[f] = 0.0
            for t in range(g):
                w = group[t]
                for f in range(k):
                    gsum[f] += U[w, f]
            x_gi = np.float32(0.0)
            x_ui = np.float32(0.0)
            x_uj = np.float32(0.0)
            for f in range(k):
                x_gi += gsum[f] * inv * V[i, f]
                x_ui += U[u, f] * V[i, f]
                x_uj += U[u, f] * V[j, f]
            diff = rho * x_gi + (1 - rho) * x_ui + b[i] - x_uj - b[j]
            z = np.float32(_sigmoid(-diff))
            loss += math.log1p(math.exp(-diff)) if diff > -30.0 else -diff
            # item factors first (with the old user factors), then the group's users
            for f in range(k):
                vi = V[i, f]
                vj = V[j, f]
                uf = U[u, f]
                V[i, f] = vi + lr * (z * (rho * inv * gsum[f] + (1 - rho) * uf) - reg_i * vi)
                V[j, f] = vj + lr * (-z * uf - reg_i * vj)
                gsum[f] = vi
                U[u, f] = uf + lr * (z * ((1 - rho) * vi - vj) - reg_u * uf)
            for t in range(g):
                w = group[t]
                for f in range(k):
                    U[w, f] += lr * (z * rho * inv * gsum[f] - (reg_u * U[w, f] if w != u else 0.0))
            b[i] += lr * (z - reg_b * b[i])
            b[j] += lr * (-z - reg_b * b[j])
        losses[c] = loss
    return losses.sum()


# --------------------------------------------------------------------------- listwise
@hogwild(error_model="numpy")
def climf_epoch(U, V, indptr, indices, lr, reg_u, reg_i, order):
    """One epoch of CLiMF gradient ascent, one step per user (users in ``order``).

    For user u with items I_u and f_i = <U_u, V_i>, the smoothed reciprocal-rank bound is
    sum_i [ln g(f_i) + sum_k ln(1 - g(f_k - f_i))]; its gradients simplify to
    dF/dV_i = [g(-f_i) + sum_k (1 - 2 g(f_i - f_k))] U_u and
    dF/dU_u = sum_i [g(-f_i) V_i + sum_k g(f_k - f_i) (V_i - V_k)].
    Returns the summed objective (before the step).
    """
    k = U.shape[1]
    n = order.shape[0]
    objs = np.zeros(n)
    for t in prange(n):
        u = order[t]
        lo = indptr[u]
        m = indptr[u + 1] - lo
        if m == 0:
            continue
        f = np.empty(m, dtype=np.float32)
        for a in range(m):
            s = np.float32(0.0)
            ia = indices[lo + a]
            for d in range(k):
                s += U[u, d] * V[ia, d]
            f[a] = s
        coef_item = np.empty(m, dtype=np.float32)
        # dF/dU_u = sum_a coef_user[a] V_a with coef_user[a] = g(-f_a) + sum_k g(f_k - f_a)
        # - sum_k g(f_a - f_k): the last sum (``pulled``) is accumulated in the same pass over
        # pairs, so each pair costs one sigmoid and no pass over the factors
        coef_user = np.empty(m, dtype=np.float32)
        pulled = np.zeros(m, dtype=np.float32)
        obj = 0.0
        for a in range(m):
            ga = _sigmoid(-f[a])
            obj += math.log(max(_sigmoid(f[a]), 1e-30))
            ci = ga
            wsum = np.float32(0.0)  # sum_k g(f_k - f_a)
            for c in range(m):
                if c == a:
                    continue
                gd = np.float32(_sigmoid(f[c] - f[a]))
                obj += math.log(max(1.0 - gd, 1e-30))
                ci += 2.0 * gd - 1.0
                wsum += gd
                pulled[c] += gd
            coef_item[a] = ci
            coef_user[a] = ga + wsum
        grad_u = np.zeros(k, dtype=np.float32)
        for a in range(m):
            ia = indices[lo + a]
            w = coef_user[a] - pulled[a]
            for d in range(k):
                grad_u[d] += w * V[ia, d]
        for a in range(m):
            ia = indices[lo + a]
            for d in range(k):
                V[ia, d] += lr * (coef_item[a] * U[u, d] - reg_i * V[ia, d])
        for d in range(k):
            U[u, d] += lr * (grad_u[d] - reg_u * U[u, d])
        objs[t] = obj
    return objs.sum()


@hogwild(error_model="numpy")
def listwise_epoch(U, V, indptr, indices, values, lr, reg_u, reg_i, order):
    """One epoch of list-wise MF, one step per user over the user's items.

    With P_y(i) = softmax(r_u.)_i and P_f(i) = softmax(f_u.)_i (f_ui = <U_u, V_i>) over the
    user's items, item i's score moves up by ``(P_y(i) - ln P_f(i)) g'(f_ui)``: a
    top-one probability term plus a push that is larger for items the model ranks low
    within the list. Returns the summed cross entropy -sum P_y ln P_f.
    """
    k = U.shape[1]
    n = order.shape[0]
    losses = np.zeros(n)
    for t in prange(n):
        u = order[t]
        lo = indptr[u]
        m = indptr[u + 1] - lo
        if m == 0:
            continue
        f = np.empty(m, dtype=np.float64)
        rmax = -1e30
        fmax = -1e30
        for a in range(m):
            ia = indices[lo + a]
            dot = 0.0
            for d in range(k):
                dot += U[u, d] * V[ia, d]
            f[a] = dot
            fmax = max(fmax, dot)
            rmax = max(rmax, values[lo + a])
        zy = 0.0
        zf = 0.0
        for a in range(m):
            zy += math.exp(values[lo + a] - rmax)
            zf += math.exp(f[a] - fmax)
        log_zf = fmax + math.log(zf)
        grad_u = np.zeros(k, dtype=np.float32)
        loss = 0.0
        for a in range(m):
            ia = indices[lo + a]
            log_pf = f[a] - log_zf
            py = math.exp(values[lo + a] - rmax) / zy
            loss -= py * log_pf
            s = _sigmoid(f[a])
            c = np.float32((py - log_pf) * s * (1.0 - s))
            for d in range(k):
                grad_u[d] += c * V[ia, d]
                V[ia, d] += lr * (c * U[u, d] - reg_i * V[ia, d])
        for d in range(k):
            U[u, d] += lr * (grad_u[d] - reg_u * U[u, d])
        losses[t] = loss
    return losses.sum()


# --------------------------------------------------------------------------- fold-in
@pnjit(error_model="numpy")
def bpr_fold_in(indptr, indices, V, b, use_bias, k, n_steps, lr, reg, seed):
    """Factors of new users (rows of ``indptr``/``indices``) by BPR steps on fixed items."""
    n = indptr.shape[0] - 1
    n_items = V.shape[0]
    out = np.zeros((n, k), dtype=np.float32)
    seeds = chunk_seeds_nb(seed, n)
    for r in prange(n):
        lo = indptr[r]
        cnt = indptr[r + 1] - lo
        if cnt == 0 or cnt >= n_items:
            continue
        x = seeds[r]
        u = out[r]
        steps = n_steps * cnt
        for _ in range(steps):
            x = _next(x)
            i = indices[lo + _below(x, cnt)]
            x, j = _uniform_negative(x, n_items, indices, lo, cnt)
            if j < 0:
                continue
            diff = np.float32(0.0)
            for f in range(k):
                diff += u[f] * (V[i, f] - V[j, f])
            if use_bias:
                diff += b[i] - b[j]
            z = np.float32(_sigmoid(-diff))
            for f in range(k):
                u[f] += lr * (z * (V[i, f] - V[j, f]) - reg * u[f])
    return out


@njit(error_model="numpy")
def chunk_seeds_nb(seed, n):
    out = np.empty(n, dtype=np.uint64)
    for c in range(n):
        x = np.uint64(seed) * _M1 + np.uint64(c + 1) * _M3
        x ^= x >> np.uint64(30)
        x *= _M2
        x ^= x >> np.uint64(27)
        x *= _M3
        x ^= x >> np.uint64(31)
        if x == 0:
            x = np.uint64(0x2545F4914F6CDD1D)
        out[c] = x
    return out
