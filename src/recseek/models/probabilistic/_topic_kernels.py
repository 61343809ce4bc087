"""Numba kernels of the aspect / topic models: EM passes, collapsed Gibbs sweeps, fold-in.

Random numbers come from a xorshift64 state per chunk of users, seeded from
``(seed, sweep, chunk)``; the chunks are fixed by the data (never by the number of
threads), so a Gibbs sweep gives the same result on any number of threads.
"""

from __future__ import annotations

import math

import numpy as np

from ..._numba import njit, pnjit, prange

_M1 = np.uint64(0x9E3779B97F4A7C15)
_M2 = np.uint64(0xBF58476D1CE4E5B9)
_M3 = np.uint64(0x94D049BB133111EB)
_LOG_2PI_HALF = 0.5 * math.log(2.0 * math.pi)


def stream_seeds(seed: int, sweep: int, n: int) -> np.ndarray:
    """Non-zero uint64 xorshift states, one per chunk, from ``(seed, sweep, chunk)`` (splitmix64)."""
    with np.errstate(over="ignore"):
        x = (np.uint64(seed) * _M1 + np.uint64(sweep + 1) * _M2
             + (np.arange(n, dtype=np.uint64) + np.uint64(1)) * _M3)
        x ^= x >> np.uint64(30)
        x *= _M2
        x ^= x >> np.uint64(27)
        x *= _M3
        x ^= x >> np.uint64(31)
    x[x == 0] = np.uint64(0x2545F4914F6CDD1D)
    return x


@njit(error_model="numpy")
def _next(x):  # pragma: no cover - numba
    x ^= x << np.uint64(13)
    x ^= x >> np.uint64(7)
    x ^= x << np.uint64(17)
    return x


@njit(error_model="numpy")
def _unit(x):  # pragma: no cover - numba
    """A float in [0, 1) from the top 53 bits of state ``x``."""
    return np.float64(x >> np.uint64(11)) * (1.0 / 9007199254740992.0)


@njit(error_model="numpy")
def _pick(cum, k, u):  # pragma: no cover - numba
    """The first index t with ``cum[t] > u`` (``cum`` non-decreasing, length ``k``)."""
    for t in range(k - 1):
        if cum[t] > u:
            return t
    return k - 1


# ---------------------------------------------------------------- EM (aspect, PLSA, GPLSA)
@njit(error_model="numpy")
def _responsibility(a, b, la, lb, r, mu, sigma, lsig, gaussian, temper, out):  # pragma: no cover - numba
    """``out[z] ~ (a[z] b[z] N(r; mu[z], sigma[z]))^temper`` normalised (``la``, ``lb``,
    ``lsig``: the logs of ``a``, ``b``, ``sigma``); returns the log of the untempered
    normaliser (the pair's likelihood), or -inf when every term is zero."""
    k = a.shape[0]
    if not gaussian:
        s = 0.0
        for z in range(k):
            v = np.float64(a[z]) * b[z]
            if v < 1e-280:
                v = 0.0
            out[z] = v
            s += v
        if s <= 0.0:
            for z in range(k):
                out[z] = 1.0 / k
            return -np.inf
        if temper == 1.0:
            for z in range(k):
                out[z] /= s
        else:
            t = 0.0
            for z in range(k):
                out[z] = out[z] ** temper
                t += out[z]
            for z in range(k):
                out[z] /= t
        return math.log(s)
    best = -np.inf
    for z in range(k):
        d = (r - mu[z]) / sigma[z]
        v = la[z] + lb[z] - 0.5 * d * d - lsig[z]
        out[z] = v
        if v > best:
            best = v
    if best == -np.inf:
        for z in range(k):
            out[z] = 1.0 / k
        return -np.inf
    s = 0.0
    t = 0.0
    for z in range(k):
        g = out[z] - best
        # terms below exp(-60) relative to the largest are dropped (no subnormal arithmetic)
        e = math.exp(g) if g > -60.0 else 0.0
        s += e
        if temper == 1.0:
            out[z] = e
        else:
            out[z] = e ** temper
        t += out[z]
    for z in range(k):
        out[z] /= t
    return best + math.log(s) - _LOG_2PI_HALF


@pnjit(error_model="numpy")
def em_pass(indptr, indices, weights, A, B, LA, LB, mu, sigma, lsig, per_item, gaussian, temper,
            item_ptr, item_pos, item_user, qbuf):  # pragma: no cover - numba
    """One E-step with the sufficient statistics of the M-step.

    Pair ``(u, i)`` of weight ``w`` and value ``r = weights``'s rating has responsibilities
    ``q_z ~ (A[u,z] B[i,z] N(r; mu, sigma))^temper`` (no Gaussian unless ``gaussian``;
    ``mu``/``sigma`` are per item and topic when ``per_item``, else row 0 holds them per
    topic). Returns ``(su, si, sr, sr2, loglik)``: ``su[u,z] = sum_i w q_z``,
    ``si[i,z] = sum_u w q_z``, ``sr``/``sr2`` the item sums of ``w q_z r`` and ``w q_z r^2``,
    and the per-user log-likelihood. The user pass runs in parallel over users, the item
    pass over items (``item_ptr``/``item_pos``/``item_user``: the pairs grouped by item),
    so the sums do not depend on the threads. When ``qbuf`` has a row per pair, the
    user pass stores ``w q`` there and the item pass reads it back instead of computing
    the responsibilities again (``sr``/``sr2`` are left at zero unless ``gaussian``).
    """
    store = qbuf.shape[0] == indices.shape[0]
    n_users = indptr.shape[0] - 1
    n_items = item_ptr.shape[0] - 1
    k = A.shape[1]
    su = np.zeros((n_users, k), dtype=np.float64)
    si = np.zeros((n_items, k), dtype=np.float64)
    sr = np.zeros((n_items, k), dtype=np.float64)
    sr2 = np.zeros((n_items, k), dtype=np.float64)
    ll = np.zeros(n_users, dtype=np.float64)
    if store and not gaussian and temper == 1.0:
        # the plain multinomial case, written out (no per-pair helper call)
        for u in prange(n_users):
            for p in range(indptr[u], indptr[u + 1]):
                i = indices[p]
                tot = 0.0
                for z in range(k):
                    v = A[u, z] * B[i, z]
                    if v < 1e-280:
                        v = 0.0
                    qbuf[p, z] = v
                    tot += v
                w = weights[0, p]
                if tot <= 0.0:
                    ll[u] = -np.inf
                    for z in range(k):
                        qbuf[p, z] = w / k
                        su[u, z] += w / k
                    continue
                ll[u] += w * math.log(tot)
                f = w / tot
                for z in range(k):
                    wq = qbuf[p, z] * f
                    qbuf[p, z] = wq
                    su[u, z] += wq
        for j in prange(n_items):
            for s in range(item_ptr[j], item_ptr[j + 1]):
                pj = item_pos[s]
                for z in range(k):
                    si[j, z] += qbuf[pj, z]
        return su, si, sr, sr2, ll
    if store and gaussian:
        # Gaussian ratings, written out: log terms, the largest subtracted, then exp
        for u in prange(n_users):
            for p in range(indptr[u], indptr[u + 1]):
                i = indices[p]
                r = weights[1, p]
                ur = i if per_item else np.int64(0)
                best = -np.inf
                for z in range(k):
                    d = (r - mu[ur, z]) / sigma[ur, z]
                    v = LA[u, z] + LB[i, z] - 0.5 * d * d - lsig[ur, z]
                    qbuf[p, z] = v
                    if v > best:
                        best = v
                w = weights[0, p]
                if best == -np.inf:
                    ll[u] = -np.inf
                    for z in range(k):
                        qbuf[p, z] = w / k
                        su[u, z] += w / k
                    continue
                tot = 0.0
                tmp = 0.0
                for z in range(k):
                    g = qbuf[p, z] - best
                    e = math.exp(g) if g > -60.0 else 0.0
                    tot += e
                    if temper != 1.0:
                        e = e ** temper
                    qbuf[p, z] = e
                    tmp += e
                ll[u] += w * (best + math.log(tot) - _LOG_2PI_HALF)
                f = w / tmp
                for z in range(k):
                    wq = qbuf[p, z] * f
                    qbuf[p, z] = wq
                    su[u, z] += wq
        for j in prange(n_items):
            for s in range(item_ptr[j], item_ptr[j + 1]):
                pj = item_pos[s]
                rj = weights[1, pj]
                for z in range(k):
                    q = qbuf[pj, z]
                    si[j, z] += q
                    sr[j, z] += q * rj
                    sr2[j, z] += q * rj * rj
        return su, si, sr, sr2, ll
    for u in prange(n_users):
        q = np.empty(k, dtype=np.float64)
        for p in range(indptr[u], indptr[u + 1]):
            i = indices[p]
            r = weights[1, p]
            ur = i if per_item else np.int64(0)
            lp = _responsibility(A[u], B[i], LA[u], LB[i], r, mu[ur], sigma[ur], lsig[ur], gaussian, temper, q)
            w = weights[0, p]
            ll[u] += w * lp
            for z in range(k):
                wq = w * q[z]
                su[u, z] += wq
                if store:
                    qbuf[p, z] = wq
    for j in prange(n_items):
        qj = np.empty(k, dtype=np.float64)
        jr = np.int64(j) if per_item else np.int64(0)
        for s in range(item_ptr[j], item_ptr[j + 1]):
            pj = item_pos[s]
            rj = weights[1, pj]
            if store:
                for z in range(k):
                    qj[z] = qbuf[pj, z]
            else:
                uj = item_user[s]
                _responsibility(A[uj], B[j], LA[uj], LB[j], rj, mu[jr], sigma[jr], lsig[jr], gaussian, temper, qj)
                wj = weights[0, pj]
                for z in range(k):
                    qj[z] *= wj
            for z in range(k):
                si[j, z] += qj[z]
            if gaussian:
                for z in range(k):
                    sr[j, z] += qj[z] * rj
                    sr2[j, z] += qj[z] * rj * rj
    return su, si, sr, sr2, ll


@pnjit(error_model="numpy")
def fold_in_em(indptr, indices, data, phi, prior, steps):  # pragma: no cover - numba
    """Topic mixtures of new users with the item-topic table ``phi`` (n_items, K) fixed.

    EM on each row: ``q_iz ~ theta_z phi[i, z]``, ``theta_z ~ prior_z + sum_i w_i q_iz``,
    ``steps`` rounds from the prior's proportions (uniform when the prior is zero).
    Rows without items get the prior's proportions.
    """
    n = indptr.shape[0] - 1
    k = phi.shape[1]
    out = np.zeros((n, k), dtype=np.float32)
    psum = 0.0
    for z in range(k):
        psum += prior[z]
    for u in prange(n):
        theta = np.empty(k, dtype=np.float64)
        acc = np.empty(k, dtype=np.float64)
        for z in range(k):
            theta[z] = prior[z] / psum if psum > 0 else 1.0 / k
        lo, hi = indptr[u], indptr[u + 1]
        if hi > lo:
            for _ in range(steps):
                for z in range(k):
                    acc[z] = prior[z]
                for p in range(lo, hi):
                    i = indices[p]
                    s = 0.0
                    for z in range(k):
                        s += theta[z] * phi[i, z]
                    if s <= 0.0:
                        continue
                    for z in range(k):
                        acc[z] += data[p] * theta[z] * phi[i, z] / s
                t = 0.0
                for z in range(k):
                    t += acc[z]
                if t <= 0.0:
                    break
                for z in range(k):
                    theta[z] = acc[z] / t
        for z in range(k):
            out[u, z] = theta[z]
    return out


# ---------------------------------------------------------------- collapsed Gibbs (LDA)
@pnjit(error_model="numpy")
def lda_sweep(indptr, indices, z, user_topic, item_topic, topic_total, alpha, beta, beta_sum,
              chunk_users, seeds):  # pragma: no cover - numba
    """One collapsed Gibbs sweep of LDA over every token (user, item).

    ``alpha`` (K,) and ``beta`` (n_items,) are the Dirichlet priors, ``beta_sum`` the sum of
    ``beta``. ``z`` (nnz,) the topic of each token; ``user_topic`` (n_users, K), ``item_topic``
    (n_items, K) and ``topic_total`` (K,) the counts, updated in place. Users are taken in
    the chunks ``chunk_users`` (boundaries); with more than one chunk each chunk samples
    against the item counts of the previous sweep plus its own changes (a private copy),
    and the item counts are then rebuilt from ``z``. Returns the sum of the log of each
    token's predictive probability (before resampling), for the per-sweep log-likelihood.
    """
    n_chunks = chunk_users.shape[0] - 1
    k = user_topic.shape[1]
    lls = np.zeros(n_chunks, dtype=np.float64)
    alpha_sum = 0.0
    for t in range(k):
        alpha_sum += alpha[t]
    for c in prange(n_chunks):
        if n_chunks > 1:
            local = item_topic.copy()
            tot = topic_total.copy()
        else:
            local = item_topic
            tot = topic_total
        cum = np.empty(k, dtype=np.float64)
        inv = np.empty(k, dtype=np.float64)  # 1 / (n_t + sum beta), kept current
        for t in range(k):
            inv[t] = 1.0 / (tot[t] + beta_sum)
        x = seeds[c]
        ll = 0.0
        for u in range(chunk_users[c], chunk_users[c + 1]):
            n_u = indptr[u + 1] - indptr[u]
            for p in range(indptr[u], indptr[u + 1]):
                i = indices[p]
                old = z[p]
                user_topic[u, old] -= 1
                local[i, old] -= 1
                tot[old] -= 1
                inv[old] = 1.0 / (tot[old] + beta_sum)
                bi = beta[i]
                s = 0.0
                for t in range(k):
                    s += (user_topic[u, t] + alpha[t]) * (local[i, t] + bi) * inv[t]
                    cum[t] = s
                ll += math.log(s / (n_u - 1 + alpha_sum))
                x = _next(x)
                new = _pick(cum, k, _unit(x) * s)
                z[p] = new
                user_topic[u, new] += 1
                local[i, new] += 1
                tot[new] += 1
                inv[new] = 1.0 / (tot[new] + beta_sum)
        lls[c] = ll
    if n_chunks > 1:
        rebuild_counts(indices, z, item_topic, topic_total)
    return lls.sum()


@njit
def rebuild_counts(cols, z, table, total):  # pragma: no cover - numba
    """``table[cols[p], z[p]]`` and ``total[z[p]]`` counted afresh over every token."""
    table[:] = 0
    total[:] = 0
    for p in range(z.shape[0]):
        table[cols[p], z[p]] += 1
        total[z[p]] += 1


@njit
def count_tokens(rows, cols, z, n_rows, n_cols, k):  # pragma: no cover - numba
    """Count tables ``(rows x K)``, ``(cols x K)`` and ``(K,)`` of the assignments ``z``."""
    a = np.zeros((n_rows, k), dtype=np.int32)
    b = np.zeros((n_cols, k), dtype=np.int32)
    t = np.zeros(k, dtype=np.int64)
    for p in range(z.shape[0]):
        a[rows[p], z[p]] += 1
        b[cols[p], z[p]] += 1
        t[z[p]] += 1
    return a, b, t


# ---------------------------------------------------------------- collapsed Gibbs (ItemBigram)
@pnjit(error_model="numpy")
def bigram_sweep(indptr, pair, prev, z, user_topic, pair_topic, prev_topic, alpha, beta, beta_sum,
                 chunk_users, seeds):  # pragma: no cover - numba
    """One collapsed Gibbs sweep of the bigram topic model (Wallach 2006).

    Token ``p`` of user ``u`` (items in time order) has topic ``z[p]``, the (previous,
    current) item pair ``pair[p]`` and previous item ``prev[p]`` (``n_items`` for a user's
    first item). Counts: ``user_topic`` (n_users, K), ``pair_topic`` (n_pairs, K) and
    ``prev_topic`` (n_items + 1, K), updated in place; ``beta_sum = n_items * beta``.
    Chunks as in :func:`lda_sweep`. Returns the sum of the log predictive probabilities.
    """
    n_chunks = chunk_users.shape[0] - 1
    k = user_topic.shape[1]
    lls = np.zeros(n_chunks, dtype=np.float64)
    alpha_sum = 0.0
    for t in range(k):
        alpha_sum += alpha[t]
    for c in prange(n_chunks):
        if n_chunks > 1:
            local = pair_topic.copy()
            ptot = prev_topic.copy()
        else:
            local = pair_topic
            ptot = prev_topic
        cum = np.empty(k, dtype=np.float64)
        x = seeds[c]
        ll = 0.0
        for u in range(chunk_users[c], chunk_users[c + 1]):
            n_u = indptr[u + 1] - indptr[u]
            for p in range(indptr[u], indptr[u + 1]):
                q = pair[p]
                j = prev[p]
                old = z[p]
                user_topic[u, old] -= 1
                local[q, old] -= 1
                ptot[j, old] -= 1
                s = 0.0
                for t in range(k):
                    s += (user_topic[u, t] + alpha[t]) * (local[q, t] + beta) / (ptot[j, t] + beta_sum)
                    cum[t] = s
                ll += math.log(s / (n_u - 1 + alpha_sum))
                x = _next(x)
                new = _pick(cum, k, _unit(x) * s)
                z[p] = new
                user_topic[u, new] += 1
                local[q, new] += 1
                ptot[j, new] += 1
        lls[c] = ll
    if n_chunks > 1:
        rebuild_counts(pair, z, pair_topic, np.zeros(k, dtype=np.int64))
        rebuild_counts(prev, z, prev_topic, np.zeros(k, dtype=np.int64))
    return lls.sum()


def chunk_bounds(indptr: np.ndarray, tokens_per_chunk: int) -> np.ndarray:
    """User boundaries of chunks holding about ``tokens_per_chunk`` tokens each (at least one
    chunk); they depend only on the data, never on the number of threads."""
    nnz = int(indptr[-1])
    n_users = len(indptr) - 1
    n_chunks = max(1, min(n_users, nnz // max(1, tokens_per_chunk)))
    if n_chunks == 1:
        return np.array([0, n_users], dtype=np.int64)
    targets = np.linspace(0, nnz, n_chunks + 1)[1:-1]
    cuts = np.searchsorted(indptr, targets, side="left")
    return np.unique(np.concatenate([[0], cuts, [n_users]])).astype(np.int64)
