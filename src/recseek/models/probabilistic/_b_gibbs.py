"""Numba kernels of the collapsed Gibbs samplers of BUCM, URP, LDCC and BHFree, and the
fold-in of a new user's mixture shared by all four.

Every sweep runs over chunks of consecutive users (``chunk_ptr``). Each chunk owns the
rows of its users in the user-side count tables and works on its own copy of the shared
(topic, item, rating) tables; the copies are merged after the sweep (the approximate
distributed sampler of Newman et al., exact when there is one chunk). The chunk
boundaries are fixed by the data alone and each chunk draws from its own xorshift64
stream seeded from ``(seed, sweep, chunk)``, so a seed gives the same result on any
number of threads. The chunk count grows with the number of ratings (one chunk below
:data:`recseek.models.probabilistic._b_common.RATINGS_PER_CHUNK`), so small and medium
data sets are sampled exactly.

Each sweep returns the sum over ratings of the log of the collapsed predictive
probability of the rating given all other assignments (a pseudo-log-likelihood shown in
the progress bar).
"""

from __future__ import annotations

import numpy as np

from ..._numba import njit, pnjit, prange


@njit(error_model="numpy")
def _uniform(x):  # pragma: no cover - numba
    """Next xorshift64 state and a uniform draw in [0, 1)."""
    x ^= x << np.uint64(13)
    x ^= x >> np.uint64(7)
    x ^= x << np.uint64(17)
    return x, (x >> np.uint64(11)) * (1.0 / 9007199254740992.0)


@njit
def _total(x):  # pragma: no cover - numba
    """Sum of a 1-d array in index order (a separate function, so that a parallel kernel
    does not turn it into a reduction whose rounding depends on the threads)."""
    acc = 0.0
    for v in x:
        acc += v
    return acc


@njit
def _search(cum, n, target):  # pragma: no cover - numba
    """First index whose cumulative weight exceeds ``target`` (binary search)."""
    lo, hi = 0, n - 1
    while lo < hi:
        mid = (lo + hi) // 2
        if cum[mid] > target:
            hi = mid
        else:
            lo = mid + 1
    return lo


@njit
def _merge(shared, local):  # pragma: no cover - numba
    """``shared`` += the changes every chunk made to its copy (``local[c] - shared``)."""
    flat = shared.reshape(-1)
    n_chunks = local.shape[0]
    lf = local.reshape(n_chunks, -1)
    for j in range(flat.shape[0]):
        base = flat[j]
        acc = base
        for c in range(n_chunks):
            acc += lf[c, j] - base
        flat[j] = acc


# ---------------------------------------------------------------- BUCM
@pnjit(error_model="numpy")
def bucm_sweep(chunk_ptr, indptr, indices, lev, z, nuk, nki, nk, nkir, alpha, beta, gamma,
               seeds):  # pragma: no cover - numba
    """One sweep of BUCM: p(z = k) ∝ (n_uk + a_k) (n_ki + b_i) / (n_k + sum b) (n_kir + g_r) / (n_ki + sum g).

    The item tables are item-major: ``nki`` (n_items, K), ``nkir`` (n_items, K, R).
    """
    n_chunks = chunk_ptr.shape[0] - 1
    K = nuk.shape[1]
    asum = _total(alpha)
    bsum = _total(beta)
    gsum = _total(gamma)
    l_nki = np.empty((n_chunks,) + nki.shape, dtype=nki.dtype)
    l_nk = np.empty((n_chunks,) + nk.shape, dtype=nk.dtype)
    l_nkir = np.empty((n_chunks,) + nkir.shape, dtype=nkir.dtype)
    ll = np.zeros(n_chunks)
    for c in prange(n_chunks):
        a = l_nki[c]
        b = l_nk[c]
        d = l_nkir[c]
        a[:] = nki
        b[:] = nk
        d[:] = nkir
        x = seeds[c]
        cum = np.empty(K)
        acc = 0.0
        for u in range(chunk_ptr[c], chunk_ptr[c + 1]):
            n_u = indptr[u + 1] - indptr[u]
            for t in range(indptr[u], indptr[u + 1]):
                i = indices[t]
                r = lev[t]
                k = z[t]
                nuk[u, k] -= 1
                a[i, k] -= 1
                b[k] -= 1
                d[i, k, r] -= 1
                bi = beta[i]
                gr = gamma[r]
                tot = 0.0
                for q in range(K):
                    n = a[i, q]
                    tot += (nuk[u, q] + alpha[q]) * (n + bi) * (d[i, q, r] + gr) / ((b[q] + bsum) * (n + gsum))
                    cum[q] = tot
                acc += np.log(tot / (n_u - 1 + asum))
                x, v = _uniform(x)
                k = _search(cum, K, v * tot)
                z[t] = k
                nuk[u, k] += 1
                a[i, k] += 1
                b[k] += 1
                d[i, k, r] += 1
        ll[c] = acc
    _merge(nki, l_nki)
    _merge(nk, l_nk)
    _merge(nkir, l_nkir)
    return _total(ll)


# ---------------------------------------------------------------- URP
@pnjit(error_model="numpy")
def urp_sweep(chunk_ptr, indptr, indices, lev, z, nuk, nki, nkir, alpha, beta, seeds):  # pragma: no cover - numba
    """One sweep of URP: p(z = k) ∝ (n_uk + a_k) (n_kir + b_r) / (n_ki + sum b).

    The item tables are item-major: ``nki`` (n_items, K), ``nkir`` (n_items, K, R).
    """
    n_chunks = chunk_ptr.shape[0] - 1
    K = nuk.shape[1]
    asum = _total(alpha)
    bsum = _total(beta)
    l_nki = np.empty((n_chunks,) + nki.shape, dtype=nki.dtype)
    l_nkir = np.empty((n_chunks,) + nkir.shape, dtype=nkir.dtype)
    ll = np.zeros(n_chunks)
    for c in prange(n_chunks):
        a = l_nki[c]
        d = l_nkir[c]
        a[:] = nki
        d[:] = nkir
        x = seeds[c]
        cum = np.empty(K)
        acc = 0.0
        for u in range(chunk_ptr[c], chunk_ptr[c + 1]):
            n_u = indptr[u + 1] - indptr[u]
            for t in range(indptr[u], indptr[u + 1]):
                i = indices[t]
                r = lev[t]
                k = z[t]
                nuk[u, k] -= 1
                a[i, k] -= 1
                d[i, k, r] -= 1
                br = beta[r]
                tot = 0.0
                for q in range(K):
                    tot += (nuk[u, q] + alpha[q]) * (d[i, q, r] + br) / (a[i, q] + bsum)
                    cum[q] = tot
                acc += np.log(tot / (n_u - 1 + asum))
                x, v = _uniform(x)
                k = _search(cum, K, v * tot)
                z[t] = k
                nuk[u, k] += 1
                a[i, k] += 1
                d[i, k, r] += 1
        ll[c] = acc
    _merge(nki, l_nki)
    _merge(nkir, l_nkir)
    return _total(ll)


# ---------------------------------------------------------------- LDCC
@pnjit(error_model="numpy")
def ldcc_sweep(chunk_ptr, indptr, indices, lev, zu, zi, nuk, nil, nklr, nkl, alpha_user, alpha_item, beta,
               seeds):  # pragma: no cover - numba
    """One sweep of LDCC, drawing each rating's (user cluster k, item cluster l) jointly:
    p(k, l) ∝ (n_uk + a_u) (n_il + a_i) (n_klr + b) / (n_kl + R b)."""
    n_chunks = chunk_ptr.shape[0] - 1
    K = nuk.shape[1]
    L = nil.shape[1]
    R = nklr.shape[2]
    rb = R * beta
    l_nil = np.empty((n_chunks,) + nil.shape, dtype=nil.dtype)
    l_nklr = np.empty((n_chunks,) + nklr.shape, dtype=nklr.dtype)
    l_nkl = np.empty((n_chunks,) + nkl.shape, dtype=nkl.dtype)
    ll = np.zeros(n_chunks)
    for c in prange(n_chunks):
        a = l_nil[c]
        d = l_nklr[c]
        e = l_nkl[c]
        a[:] = nil
        d[:] = nklr
        e[:] = nkl
        x = seeds[c]
        cum = np.empty(K * L)
        inv = np.empty((K, L))
        for p in range(K):
            for q in range(L):
                inv[p, q] = 1.0 / (e[p, q] + rb)
        wi = np.empty(L)
        acc = 0.0
        for u in range(chunk_ptr[c], chunk_ptr[c + 1]):
            n_u = indptr[u + 1] - indptr[u]
            for t in range(indptr[u], indptr[u + 1]):
                i = indices[t]
                r = lev[t]
                k = zu[t]
                m = zi[t]
                nuk[u, k] -= 1
                a[i, m] -= 1
                d[k, m, r] -= 1
                e[k, m] -= 1
                inv[k, m] = 1.0 / (e[k, m] + rb)
                n_i = 0
                for q in range(L):
                    n_i += a[i, q]
                    wi[q] = a[i, q] + alpha_item
                tot = 0.0
                for p in range(K):
                    wu = nuk[u, p] + alpha_user
                    for q in range(L):
                        tot += wu * wi[q] * (d[p, q, r] + beta) * inv[p, q]
                        cum[p * L + q] = tot
                acc += np.log(tot / ((n_u - 1 + K * alpha_user) * (n_i + L * alpha_item)))
                x, v = _uniform(x)
                s = _search(cum, K * L, v * tot)
                k = s // L
                m = s - k * L
                zu[t] = k
                zi[t] = m
                nuk[u, k] += 1
                a[i, m] += 1
                d[k, m, r] += 1
                e[k, m] += 1
                inv[k, m] = 1.0 / (e[k, m] + rb)
        ll[c] = acc
    _merge(nil, l_nil)
    _merge(nklr, l_nklr)
    _merge(nkl, l_nkl)
    return _total(ll)


# ---------------------------------------------------------------- BHFree
@njit(error_model="numpy")
def _bh_row(fac, nkl, nk, k, beta, lb, rg, isg):  # pragma: no cover - numba
    inv = 1.0 / (nk[k] + lb)
    for q in range(nkl.shape[1]):
        n = nkl[k, q]
        fac[k, q] = (n + beta) * inv / ((n + rg) * (n + isg))


@pnjit(error_model="numpy")
def bhfree_sweep(chunk_ptr, indptr, indices, lev, zu, zi, nuk, nkl, nk, nklr, nkli, alpha, beta, gamma, sigma,
                 seeds):  # pragma: no cover - numba
    """One sweep of BH-free, drawing each rating's (community k, category l) jointly:
    p(k, l) ∝ (n_uk + a) (n_kl + b) / (n_k + L b) (n_klr + g) / (n_kl + R g) (n_kli + s) / (n_kl + I s).

    ``nkli`` is item-major: (n_items, K, L).
    """
    n_chunks = chunk_ptr.shape[0] - 1
    K = nuk.shape[1]
    L = nkl.shape[1]
    R = nklr.shape[2]
    n_items = nkli.shape[0]
    lb = L * beta
    rg = R * gamma
    isg = n_items * sigma
    l_nkl = np.empty((n_chunks,) + nkl.shape, dtype=nkl.dtype)
    l_nk = np.empty((n_chunks,) + nk.shape, dtype=nk.dtype)
    l_nklr = np.empty((n_chunks,) + nklr.shape, dtype=nklr.dtype)
    l_nkli = np.empty((n_chunks,) + nkli.shape, dtype=nkli.dtype)
    ll = np.zeros(n_chunks)
    for c in prange(n_chunks):
        e = l_nkl[c]
        f = l_nk[c]
        d = l_nklr[c]
        g = l_nkli[c]
        e[:] = nkl
        f[:] = nk
        d[:] = nklr
        g[:] = nkli
        x = seeds[c]
        cum = np.empty(K * L)
        # fac[k, l] = (n_kl + b) / ((n_k + L b) (n_kl + R g) (n_kl + I s)), refreshed for the
        # community whose counts change
        fac = np.empty((K, L))
        for p in range(K):
            _bh_row(fac, e, f, p, beta, lb, rg, isg)
        acc = 0.0
        for u in range(chunk_ptr[c], chunk_ptr[c + 1]):
            n_u = indptr[u + 1] - indptr[u]
            for t in range(indptr[u], indptr[u + 1]):
                i = indices[t]
                r = lev[t]
                k = zu[t]
                m = zi[t]
                nuk[u, k] -= 1
                e[k, m] -= 1
                f[k] -= 1
                d[k, m, r] -= 1
                g[i, k, m] -= 1
                _bh_row(fac, e, f, k, beta, lb, rg, isg)
                tot = 0.0
                for p in range(K):
                    wu = nuk[u, p] + alpha
                    for q in range(L):
                        tot += wu * fac[p, q] * (d[p, q, r] + gamma) * (g[i, p, q] + sigma)
                        cum[p * L + q] = tot
                acc += np.log(tot / (n_u - 1 + K * alpha))
                x, v = _uniform(x)
                s = _search(cum, K * L, v * tot)
                k = s // L
                m = s - k * L
                zu[t] = k
                zi[t] = m
                nuk[u, k] += 1
                e[k, m] += 1
                f[k] += 1
                d[k, m, r] += 1
                g[i, k, m] += 1
                _bh_row(fac, e, f, k, beta, lb, rg, isg)
        ll[c] = acc
    _merge(nkl, l_nkl)
    _merge(nk, l_nk)
    _merge(nklr, l_nklr)
    _merge(nkli, l_nkli)
    return _total(ll)


# ---------------------------------------------------------------- fold-in
@pnjit(error_model="numpy")
def mixture_fold_in(indptr, indices, lev, lik, prior, iterations):  # pragma: no cover - numba
    """A new user's mixture over the T user-side components, by EM with the item side fixed.

    ``lik[k, i, r]`` is the probability of item ``i`` with rating level ``r`` (or of the
    level given the item) under component ``k``; ``prior`` the Dirichlet prior of the
    mixture. Returns float32 (n_rows, T); a row without ratings gets the prior's mean.
    """
    n = indptr.shape[0] - 1
    T = lik.shape[0]
    psum = _total(prior)
    theta = np.empty((n, T), dtype=np.float32)
    for u in prange(n):
        lo, hi = indptr[u], indptr[u + 1]
        th = np.empty(T)
        for k in range(T):
            th[k] = prior[k] / psum
        acc = np.zeros(T)
        resp = np.empty(T)
        for _ in range(iterations if hi > lo else 0):
            acc[:] = 0.0
            for t in range(lo, hi):
                i = indices[t]
                r = lev[t]
                tot = 0.0
                for k in range(T):
                    resp[k] = th[k] * lik[k, i, r]
                    tot += resp[k]
                if tot > 0.0:
                    for k in range(T):
                        acc[k] += resp[k] / tot
            for k in range(T):
                th[k] = (acc[k] + prior[k]) / (hi - lo + psum)
        for k in range(T):
            theta[u, k] = th[k]
    return theta


# ---------------------------------------------------------------- Dirichlet priors
@njit(error_model="numpy")
def digamma(x):  # pragma: no cover - numba
    """The digamma function for x > 0 (recurrence to x >= 6, then the asymptotic series)."""
    out = 0.0
    while x < 6.0:
        out -= 1.0 / x
        x += 1.0
    f = 1.0 / (x * x)
    return out + np.log(x) - 0.5 / x - f * (1.0 / 12 - f * (1.0 / 120 - f * (1.0 / 252 - f * (1.0 / 240 - f / 132))))


@njit(error_model="numpy")
def digamma_gap(n, a):  # pragma: no cover - numba
    """``digamma(n + a) - digamma(a)`` for a count ``n >= 0``: the sum of ``1 / (a + j)``
    over ``j < n`` for small counts (most of them), the digamma function beyond."""
    if n < 16:
        out = 0.0
        for j in range(int(n)):
            out += 1.0 / (a + j)
        return out
    return digamma(n + a) - digamma(a)


@njit(error_model="numpy")
def minka_step(prior, counts, totals):  # pragma: no cover - numba
    """One step of Minka's fixed point for a Dirichlet prior (see ``_b_common.minka_update``)."""
    n_values = prior.shape[0]
    psum = _total(prior)
    den = 0.0
    for g in range(totals.shape[0]):
        if totals[g] > 0:
            den += digamma_gap(totals[g], psum)
    num = np.zeros(n_values)
    for g in range(counts.shape[0]):
        for v in range(n_values):
            c = counts[g, v]
            if c != 0:
                num[v] += digamma_gap(c, prior[v])
    out = prior.copy()
    if den <= 0.0:
        return out
    for v in range(n_values):
        if num[v] > 0.0:
            out[v] = max(prior[v] * num[v] / den, 1e-6)
    return out
