"""numba kernels of the ALS family.

Every kernel updates the rows of one factor matrix ``X`` given the fixed other side
``Y`` and a CSR matrix whose row ``r`` lists the interactions of ``X[r]`` with rows of
``Y``. Work is split into contiguous chunks of rows balanced by their number of
interactions (``_implicit.balanced_chunks``); ``prange`` runs the chunks on all cores and each
chunk allocates its workspace once. A row's result does not depend on the chunking, so
results are the same for any number of threads.
"""

from __future__ import annotations

import numpy as np

from ..._numba import njit, pnjit, prange

#: Fast-math flags that allow reordering sums (vectorised reductions) but keep NaN and
#: infinity semantics, so that divergence still shows up as non-finite factors.
FAST = {"nsz", "arcp", "contract", "afn", "reassoc"}

# ---------------------------------------------------------------- helpers


@njit(fastmath=FAST, error_model="numpy")
def cholesky_solve(a: np.ndarray, b: np.ndarray, out: np.ndarray) -> None:
    """Solve ``a x = b`` for a symmetric positive definite ``a``; ``x`` goes to ``out``.

    Only the lower triangle of ``a`` is read, and it is overwritten by the Cholesky
    factor. A pivot that is not positive (a singular system) is replaced by a tiny
    positive number, which gives a least-norm-like answer instead of NaN.
    """
    d = a.shape[0]
    for j in range(d):
        s = a[j, j]
        for k in range(j):
            s -= a[j, k] * a[j, k]
        if s <= 1e-10:
            s = 1e-10
        ljj = np.sqrt(s)
        a[j, j] = ljj
        for i in range(j + 1, d):
            t = a[i, j]
            for k in range(j):
                t -= a[i, k] * a[j, k]
            a[i, j] = t / ljj
    for i in range(d):
        t = b[i]
        for k in range(i):
            t -= a[i, k] * out[k]
        out[i] = t / a[i, i]
    for i in range(d - 1, -1, -1):
        t = out[i]
        for k in range(i + 1, d):
            t -= a[k, i] * out[k]
        out[i] = t / a[i, i]


# ---------------------------------------------------------------- WRMF (Hu et al. 2008)


@njit(fastmath=FAST, error_model="numpy")
def _cg_rows(start, end, indptr, indices, values, alpha, X, Y, A, cg_steps):  # pragma: no cover - numba
    """Conjugate-gradient steps for rows ``start..end`` of ``X`` (see :func:`wrmf_cg`)."""
    d = X.shape[1]
    x = np.empty(d, dtype=np.float32)
    r = np.empty(d, dtype=np.float32)
    p = np.empty(d, dtype=np.float32)
    ap = np.empty(d, dtype=np.float32)
    for u in range(start, end):
        for f in range(d):
            x[f] = X[u, f]
        # residual r = b - A_u x
        for f in range(d):
            s = np.float32(0.0)
            for g in range(d):
                s += A[f, g] * x[g]
            r[f] = -s
        for ptr in range(indptr[u], indptr[u + 1]):
            i = indices[ptr]
            cu = np.float32(1.0) + alpha * values[ptr]
            yx = np.float32(0.0)
            for f in range(d):
                yx += Y[i, f] * x[f]
            coef = cu - (cu - np.float32(1.0)) * yx
            for f in range(d):
                r[f] += coef * Y[i, f]
        rs_old = np.float32(0.0)
        for f in range(d):
            p[f] = r[f]
            rs_old += r[f] * r[f]
        for _ in range(cg_steps):
            if rs_old < 1e-20:
                break
            for f in range(d):
                s = np.float32(0.0)
                for g in range(d):
                    s += A[f, g] * p[g]
                ap[f] = s
            for ptr in range(indptr[u], indptr[u + 1]):
                i = indices[ptr]
                yp = np.float32(0.0)
                for f in range(d):
                    yp += Y[i, f] * p[f]
                coef = alpha * values[ptr] * yp
                for f in range(d):
                    ap[f] += coef * Y[i, f]
            pap = np.float32(0.0)
            for f in range(d):
                pap += p[f] * ap[f]
            if pap <= 0:
                break
            step = rs_old / pap
            rs_new = np.float32(0.0)
            for f in range(d):
                x[f] += step * p[f]
                r[f] -= step * ap[f]
                rs_new += r[f] * r[f]
            beta = rs_new / rs_old
            for f in range(d):
                p[f] = r[f] + beta * p[f]
            rs_old = rs_new
        for f in range(d):
            X[u, f] = x[f]


@pnjit(fastmath=FAST, error_model="numpy")
def wrmf_cg(indptr, indices, values, alpha, X, Y, A, cg_steps, bounds):  # pragma: no cover - numba
    """Conjugate-gradient steps towards the WRMF least-squares solution of each row.

    Minimises ``sum_j c_rj (1 - x.y_j)^2 + sum_{j unobserved} (x.y_j)^2 + reg |x|^2``
    for every row ``x`` of ``X`` (in place), warm-started from the current ``x``.
    ``A`` is ``Y^T Y + reg I``; the confidence ``c_rj = 1 + alpha * values_rj`` is computed
    on the fly from the stored values (aligned with ``indices``), so no array of it is kept.
    """
    for c in prange(bounds.shape[0] - 1):
        _cg_rows(bounds[c], bounds[c + 1], indptr, indices, values, alpha, X, Y, A, cg_steps)


@njit(fastmath=FAST, error_model="numpy")
def wrmf_cg_serial(indptr, indices, values, alpha, X, Y, A, cg_steps):  # pragma: no cover - numba
    """:func:`wrmf_cg` on the calling thread only (small data: no thread start-up)."""
    _cg_rows(0, X.shape[0], indptr, indices, values, alpha, X, Y, A, cg_steps)


@pnjit(fastmath=FAST, error_model="numpy")
def solve_rows(indptr, indices, w_gram, w_rhs, Y, base, lam, rows, out):  # pragma: no cover - numba
    """Exact regularised least squares for selected rows.

    For each ``k``, row ``r = rows[k]`` of the CSR structure gets
    ``out[k] = (base + lam[k] I + sum_j w_gram_j y_j y_j^T)^-1 sum_j w_rhs_j y_j``
    where ``j`` runs over the stored entries of row ``r`` (weights aligned with
    ``indices``). Solved by Cholesky in float64.
    """
    d = Y.shape[1]
    for k in prange(rows.shape[0]):
        r = rows[k]
        m = np.empty((d, d), dtype=np.float64)
        b = np.zeros(d, dtype=np.float64)
        x = np.empty(d, dtype=np.float64)
        for f in range(d):
            for g in range(f + 1):
                m[f, g] = base[f, g]
            m[f, f] += lam[k]
        for ptr in range(indptr[r], indptr[r + 1]):
            i = indices[ptr]
            wg = w_gram[ptr]
            wr = w_rhs[ptr]
            for f in range(d):
                yf = Y[i, f]
                b[f] += wr * yf
                wy = wg * yf
                for g in range(f + 1):
                    m[f, g] += wy * Y[i, g]
        cholesky_solve(m, b, x)
        for f in range(d):
            out[k, f] = x[f]


# ---------------------------------------------------------------- iALS++ (Rendle et al. 2021)


@pnjit(fastmath=FAST, error_model="numpy")
def ialspp_sweep(indptr, indices, X, Y, G, alpha0, lam, block, bounds, max_len):  # pragma: no cover
    """One subspace sweep over the rows of ``X`` (in place).

    Objective of a row ``x``: ``sum_{j observed} (x.y_j - 1)^2 + alpha0 x^T G x + lam_r |x|^2``
    with ``G = Y^T Y`` (the all-pairs term of iALS). The dimensions are visited in
    blocks of ``block``; each block is solved exactly (Newton step on a quadratic) with
    the predictions of the observed entries cached and updated after each block.
    """
    d = X.shape[1]
    for c in prange(bounds.shape[0] - 1):
        pred = np.empty(max_len, dtype=np.float32)
        h = np.empty((block, block), dtype=np.float64)
        g = np.empty(block, dtype=np.float64)
        delta = np.empty(block, dtype=np.float64)
        for u in range(bounds[c], bounds[c + 1]):
            start = indptr[u]
            n = indptr[u + 1] - start
            lu = lam[u]
            for t in range(n):
                i = indices[start + t]
                s = np.float32(0.0)
                for f in range(d):
                    s += X[u, f] * Y[i, f]
                pred[t] = s
            for b0 in range(0, d, block):
                bs = min(block, d - b0)
                for a in range(bs):
                    s = 0.0
                    for f in range(d):
                        s += G[b0 + a, f] * X[u, f]
                    g[a] = alpha0 * s + lu * X[u, b0 + a]
                    for e in range(a + 1):
                        h[a, e] = alpha0 * G[b0 + a, b0 + e]
                    h[a, a] += lu
                for t in range(n):
                    i = indices[start + t]
                    err = pred[t] - 1.0
                    for a in range(bs):
                        ya = Y[i, b0 + a]
                        g[a] += err * ya
                        for e in range(a + 1):
                            h[a, e] += ya * Y[i, b0 + e]
                cholesky_solve(h[:bs, :bs], g[:bs], delta[:bs])
                for a in range(bs):
                    X[u, b0 + a] -= delta[a]
                for t in range(n):
                    i = indices[start + t]
                    s = np.float32(0.0)
                    for a in range(bs):
                        s += Y[i, b0 + a] * delta[a]
                    pred[t] -= s


# ---------------------------------------------------------------- eALS (He et al. 2016)


@pnjit(fastmath=FAST, error_model="numpy")
def eals_sweep(indptr, indices, w, X, Y, S, crow, ccol, reg, bounds, max_len):  # pragma: no cover
    """One element-wise (coordinate) sweep over the rows of ``X`` (in place).

    Row objective: ``sum_{j observed} w_j (1 - x.y_j)^2 + sum_{j unobserved} m_j (x.y_j)^2
    + reg |x|^2`` with missing-data weight ``m_j = crow[r] * ccol[j]``. ``S`` is the cache
    ``sum_j ccol_j y_j y_j^T`` over every column, so unobserved entries are never visited.
    """
    d = X.shape[1]
    for c in prange(bounds.shape[0] - 1):
        pred = np.empty(max_len, dtype=np.float32)
        for u in range(bounds[c], bounds[c + 1]):
            start = indptr[u]
            n = indptr[u + 1] - start
            cr = crow[u]
            for t in range(n):
                i = indices[start + t]
                s = np.float32(0.0)
                for f in range(d):
                    s += X[u, f] * Y[i, f]
                pred[t] = s
            for f in range(d):
                xf = X[u, f]
                num = 0.0
                for k in range(d):
                    num -= X[u, k] * S[f, k]
                num = cr * (num + xf * S[f, f])
                den = cr * S[f, f] + reg
                for t in range(n):
                    i = indices[start + t]
                    y = Y[i, f]
                    wt = w[start + t]
                    cm = cr * ccol[i]
                    partial = pred[t] - xf * y
                    num += (wt - (wt - cm) * partial) * y
                    den += (wt - cm) * y * y
                new = num / den if den > 0 else 0.0
                X[u, f] = new
                diff = new - xf
                for t in range(n):
                    pred[t] += diff * Y[indices[start + t], f]


# ---------------------------------------------------------------- RankALS (Takacs & Tikk 2012)


@pnjit(fastmath=FAST, error_model="numpy")
def rankals_users(indptr, indices, r, support, Y, a_tilde, q_tilde, s_total, reg, rows, out):  # pragma: no cover
    """Closed-form user step of RankALS for the selected rows.

    Minimises ``sum_{i observed} sum_j s_j ((x.y_i - x.y_j) - (r_i - r_j))^2 + reg |x|^2``
    over all items ``j`` (``r_j = 0`` when unobserved), using the support-weighted
    item statistics ``a_tilde = sum_j s_j y_j y_j^T``, ``q_tilde = sum_j s_j y_j`` and
    ``s_total = sum_j s_j``. Users without interactions get zeros.
    """
    d = Y.shape[1]
    for k in prange(rows.shape[0]):
        u = rows[k]
        start = indptr[u]
        n = indptr[u + 1] - start
        if n == 0:
            for f in range(d):
                out[k, f] = 0.0
            continue
        m = np.zeros((d, d), dtype=np.float64)
        q_bar = np.zeros(d, dtype=np.float64)
        b_bar = np.zeros(d, dtype=np.float64)
        b_sup = np.zeros(d, dtype=np.float64)
        x = np.empty(d, dtype=np.float64)
        r_bar = 0.0
        r_sup = 0.0
        for t in range(n):
            i = indices[start + t]
            rv = r[start + t]
            sr = support[i] * rv
            r_bar += rv
            r_sup += sr
            for f in range(d):
                yf = Y[i, f]
                q_bar[f] += yf
                b_bar[f] += rv * yf
                b_sup[f] += sr * yf
                for g in range(f + 1):
                    m[f, g] += yf * Y[i, g]
        rhs = np.empty(d, dtype=np.float64)
        for f in range(d):
            for g in range(f + 1):
                m[f, g] = (s_total * m[f, g] - q_bar[f] * q_tilde[g] - q_tilde[f] * q_bar[g]
                           + n * a_tilde[f, g])
            m[f, f] += reg
            rhs[f] = s_total * b_bar[f] - q_bar[f] * r_sup - q_tilde[f] * r_bar + n * b_sup[f]
        cholesky_solve(m, rhs, x)
        for f in range(d):
            out[k, f] = x[f]


@pnjit(fastmath=FAST, error_model="numpy")
def rankals_items(indptr, indices, r, support, P, Q, q_tilde, t_mat, z, wv, r_sup_user, n_user,
                  s_total, reg):  # pragma: no cover - numba
    """Item step of RankALS: each item's exact minimiser with the other items fixed.

    ``indptr/indices/r`` is the item x user matrix. Global statistics of the step:
    ``t_mat = sum_u n_u p_u p_u^T``, ``z = sum_u p_u (p_u . q_bar_u)``, ``wv = sum_u r_bar_u p_u``,
    ``r_sup_user[u] = sum_{j in I_u} s_j r_uj``, ``n_user[u] = |I_u|`` and ``q_tilde`` computed
    from the factors before the step. ``Q`` is updated in place; each item reads only its
    own previous vector.
    """
    d = P.shape[1]
    n_items = Q.shape[0]
    for k in prange(n_items):
        sk = support[k]
        a_k = np.zeros((d, d), dtype=np.float64)
        a_r = np.zeros(d, dtype=np.float64)
        a_rt = np.zeros(d, dtype=np.float64)
        a_rn = np.zeros(d, dtype=np.float64)
        x = np.empty(d, dtype=np.float64)
        for ptr in range(indptr[k], indptr[k + 1]):
            u = indices[ptr]
            rv = r[ptr]
            rt = r_sup_user[u]
            rn = n_user[u] * rv
            for f in range(d):
                pf = P[u, f]
                a_r[f] += rv * pf
                a_rt[f] += rt * pf
                a_rn[f] += rn * pf
                for g in range(f + 1):
                    a_k[f, g] += pf * P[u, g]
        for f in range(d):
            for g in range(f):
                a_k[g, f] = a_k[f, g]
        h = np.empty((d, d), dtype=np.float64)
        rhs = np.empty(d, dtype=np.float64)
        for f in range(d):
            s1 = 0.0
            s2 = 0.0
            for g in range(d):
                s1 += a_k[f, g] * q_tilde[g]
                s2 += a_k[f, g] * Q[k, g]
            rhs[f] = s1 - 2.0 * sk * s2 + s_total * a_r[f] - a_rt[f] + sk * (z[f] - wv[f] + a_rn[f])
            for g in range(f + 1):
                h[f, g] = (s_total - 2.0 * sk) * a_k[f, g] + sk * t_mat[f, g]
            h[f, f] += reg
        cholesky_solve(h, rhs, x)
        for f in range(d):
            Q[k, f] = x[f]


# ---------------------------------------------------------------- shared statistics


@njit(fastmath=FAST, error_model="numpy")
def _gram_rows(start, end, Y, w, acc):  # pragma: no cover - numba
    """Add ``w_r y_r y_r^T`` of rows ``start..end`` to the lower triangle of ``acc``."""
    d = Y.shape[1]
    for r in range(start, end):
        wr = w[r]
        for f in range(d):
            yf = wr * Y[r, f]
            for g in range(f + 1):
                acc[f, g] += yf * Y[r, g]


@njit(fastmath=FAST, error_model="numpy")
def _mirror(out):  # pragma: no cover - numba
    d = out.shape[0]
    for f in range(d):
        for g in range(f):
            out[g, f] = out[f, g]


@pnjit(fastmath=FAST, error_model="numpy")
def weighted_gram(Y, w, bounds):  # pragma: no cover - numba
    """``sum_r w_r y_r y_r^T`` (float64, d x d) over the rows of ``Y``, chunked over cores.

    Computed here rather than by BLAS so that training never mixes BLAS threads with
    the kernels' threads (both spin-wait and slow each other down on a busy machine).
    """
    d = Y.shape[1]
    nc = bounds.shape[0] - 1
    parts = np.zeros((max(nc, 1), d, d), dtype=np.float64)
    for c in prange(nc):
        _gram_rows(bounds[c], bounds[c + 1], Y, w, parts[c])
    out = np.zeros((d, d), dtype=np.float64)
    for c in range(nc):
        out += parts[c]
    _mirror(out)
    return out


@njit(fastmath=FAST, error_model="numpy")
def weighted_gram_serial(Y, w):  # pragma: no cover - numba
    """:func:`weighted_gram` on the calling thread only."""
    d = Y.shape[1]
    out = np.zeros((d, d), dtype=np.float64)
    _gram_rows(0, Y.shape[0], Y, w, out)
    _mirror(out)
    return out
