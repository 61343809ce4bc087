"""Numba kernels for alternating factorisation: ALS solves, NMF multiplicative updates
and CCD++ rank-one coordinate descent.

Each kernel updates one side (``a``, rows of a CSR matrix) with the other side (``b``)
fixed, in parallel over rows; the same kernel serves users (CSR of ratings) and items
(CSR of the transpose). Rows are independent, so results do not depend on the thread count.
Each kernel is a per-row function driven over contiguous row blocks in parallel; one
block runs the whole half-step on a single thread with the kernel's serial twin.
"""

from __future__ import annotations

import numpy as np

from ..._numba import njit, pnjit, prange

#: Work (stored entries x factors) from which a half-step runs on all threads; smaller
#: half-steps run on one thread, where thread start-up would cost more than it saves.
PARALLEL_MIN_WORK = 4_000_000


def parallel_work(indptr: np.ndarray, a: np.ndarray) -> bool:
    return int(indptr[-1]) * int(a.shape[1]) >= PARALLEL_MIN_WORK


def n_chunks(indptr: np.ndarray, a: np.ndarray) -> int:
    """Contiguous row blocks of a half-step: one (a single thread) below the parallel threshold."""
    from ..._numba import get_num_threads

    return 4 * get_num_threads() if parallel_work(indptr, a) else 1


@njit
def _als_side_row(r, indptr, indices, data, a, b, reg, weighted):  # pragma: no cover - numba
    k = a.shape[1]
    lo = indptr[r]
    hi = indptr[r + 1]
    if hi == lo:
        for f in range(k):
            a[r, f] = 0.0
        return
    g = np.zeros((k, k), dtype=np.float64)
    rhs = np.zeros(k, dtype=np.float64)
    for p in range(lo, hi):
        j = indices[p]
        x = data[p]
        for f in range(k):
            bf = b[j, f]
            rhs[f] += x * bf
            for h in range(f, k):
                g[f, h] += bf * b[j, h]
    lam = reg * (hi - lo) if weighted else reg
    for f in range(k):
        g[f, f] += lam + 1e-9
        for h in range(f):
            g[f, h] = g[h, f]
    sol = np.linalg.solve(g, rhs)
    for f in range(k):
        a[r, f] = sol[f]


@pnjit
def _als_side_chunks(indptr, indices, data, a, b, reg, weighted, n_chunks):  # pragma: no cover - numba
    n = indptr.shape[0] - 1
    for c in prange(n_chunks):
        for r in range(c * n // n_chunks, (c + 1) * n // n_chunks):
            _als_side_row(r, indptr, indices, data, a, b, reg, weighted)


def als_side(indptr, indices, data, a, b, reg, weighted):
    """``a[r] = argmin sum_j (x_rj - a[r].b[j])^2 + lam |a[r]|^2``; ``lam = reg * n_r`` if weighted."""
    chunks = n_chunks(indptr, a)
    _als_side_chunks.variant(chunks > 1)(indptr, indices, data, a, b, reg, weighted, chunks)


@njit
def _nmf_side_row(r, indptr, indices, data, a, b, reg, eps):  # pragma: no cover - numba
    k = a.shape[1]
    lo = indptr[r]
    hi = indptr[r + 1]
    if hi == lo:
        return
    num = np.zeros(k, dtype=np.float64)
    den = np.zeros(k, dtype=np.float64)
    for p in range(lo, hi):
        j = indices[p]
        pred = 0.0
        for f in range(k):
            pred += a[r, f] * b[j, f]
        x = data[p]
        for f in range(k):
            num[f] += x * b[j, f]
            den[f] += pred * b[j, f]
    for f in range(k):
        a[r, f] = a[r, f] * num[f] / (den[f] + reg * (hi - lo) * a[r, f] + eps)


@pnjit
def _nmf_side_chunks(indptr, indices, data, a, b, reg, eps, n_chunks):  # pragma: no cover - numba
    n = indptr.shape[0] - 1
    for c in prange(n_chunks):
        for r in range(c * n // n_chunks, (c + 1) * n // n_chunks):
            _nmf_side_row(r, indptr, indices, data, a, b, reg, eps)


def nmf_side(indptr, indices, data, a, b, reg, eps):
    """Multiplicative update of ``a`` for the squared error over observed entries only."""
    chunks = n_chunks(indptr, a)
    _nmf_side_chunks.variant(chunks > 1)(indptr, indices, data, a, b, reg, eps, chunks)


@njit
def _ccd_rows(lo, hi, indptr, indices, pos, resid, a, b, reg):  # pragma: no cover - numba
    """Exact coordinate updates of ``a[lo:hi]`` (one latent dimension, vectors ``a``, ``b``)."""
    for r in range(lo, hi):
        start = indptr[r]
        stop = indptr[r + 1]
        if stop == start:
            a[r] = 0.0
            continue
        old = a[r]
        num = 0.0
        den = reg
        for p in range(start, stop):
            bj = b[indices[p]]
            num += (resid[pos[p]] + old * bj) * bj
            den += bj * bj
        delta = num / den - old
        a[r] = old + delta
        for p in range(start, stop):
            resid[pos[p]] -= delta * b[indices[p]]


@njit
def _ccd_sweep_seq(ui, uj, upos, ii, ij, ipos, resid, pt, qt, inner, reg):  # pragma: no cover - numba
    nu = ui.shape[0] - 1
    ni = ii.shape[0] - 1
    for t in range(pt.shape[0]):
        for _ in range(inner):
            _ccd_rows(0, nu, ui, uj, upos, resid, pt[t], qt[t], reg)
            _ccd_rows(0, ni, ii, ij, ipos, resid, qt[t], pt[t], reg)


@pnjit
def _ccd_sweep_par(ui, uj, upos, ii, ij, ipos, resid, pt, qt, inner, reg, n_chunks):  # pragma: no cover - numba
    nu = ui.shape[0] - 1
    ni = ii.shape[0] - 1
    for t in range(pt.shape[0]):
        for _ in range(inner):
            for c in prange(n_chunks):
                _ccd_rows(c * nu // n_chunks, (c + 1) * nu // n_chunks, ui, uj, upos, resid, pt[t], qt[t], reg)
            for c in prange(n_chunks):
                _ccd_rows(c * ni // n_chunks, (c + 1) * ni // n_chunks, ii, ij, ipos, resid, qt[t], pt[t], reg)


def ccd_sweep(ui, uj, upos, ii, ij, ipos, resid, pt, qt, inner, reg):
    """One CCD++ sweep over every latent dimension (users then items, ``inner`` times).

    ``pt`` (k, n_users) and ``qt`` (k, n_items) hold the factors dimension-major; rows
    are independent within a half-step, so the result does not depend on the threads.
    """
    from ..._numba import get_num_threads

    if int(ui[-1]) * pt.shape[0] >= PARALLEL_MIN_WORK and get_num_threads() > 1:
        _ccd_sweep_par(ui, uj, upos, ii, ij, ipos, resid, pt, qt, inner, reg, 4 * get_num_threads())
    else:
        _ccd_sweep_seq(ui, uj, upos, ii, ij, ipos, resid, pt, qt, inner, reg)


@njit
def _residuals_row(r, indptr, indices, data, a, b, out):  # pragma: no cover - numba
    k = a.shape[1]
    for p in range(indptr[r], indptr[r + 1]):
        j = indices[p]
        s = 0.0
        for f in range(k):
            s += a[r, f] * b[j, f]
        out[p] = data[p] - s


@pnjit
def _residuals_chunks(indptr, indices, data, a, b, n_chunks):  # pragma: no cover - numba
    n = indptr.shape[0] - 1
    out = np.empty(data.shape[0], dtype=np.float32)
    for c in prange(n_chunks):
        for r in range(c * n // n_chunks, (c + 1) * n // n_chunks):
            _residuals_row(r, indptr, indices, data, a, b, out)
    return out


def residuals(indptr, indices, data, a, b):
    """``data - a[r].b[j]`` for every stored entry (CSR order)."""
    chunks = n_chunks(indptr, a)
    return _residuals_chunks.variant(chunks > 1)(indptr, indices, data, a, b, chunks)


@njit
def fm_als_sweep(ui, uj, upos, ii, ij, ipos, resid, pt, qt, user_dims, item_dims, reg_user, reg_item):
    """Coordinate (ALS) updates of selected rows of ``pt`` then ``qt`` (dimension-major),
    with per-dimension ridge weights; fixed all-ones dimensions carry the biases."""  # pragma: no cover
    nu = ui.shape[0] - 1
    ni = ii.shape[0] - 1
    for t in user_dims:
        _ccd_rows(0, nu, ui, uj, upos, resid, pt[t], qt[t], reg_user[t])
    for t in item_dims:
        _ccd_rows(0, ni, ii, ij, ipos, resid, qt[t], pt[t], reg_item[t])


@njit
def fm_als_feature_sweep(colptr, rows, vals, resid, w0, w, v, reg_w0, reg_w, reg_v, cache):  # pragma: no cover
    """One coordinate-descent sweep of a factorisation machine over general sparse features.

    The design matrix is given column-wise (``colptr/rows/vals``: for feature ``l`` the
    records holding it and their values). ``resid`` (y - prediction per record) is kept
    exact after every coordinate; for latent dimension ``f`` the cache
    ``q_r = sum_l v[l, f] x_rl`` is built once and updated with each ``v[l, f]``, so each
    coordinate costs the records holding its feature. Every coordinate is set to its
    exact ridge minimiser: ``w0`` (weight ``reg_w0``), each ``w[l]`` (``reg_w``), then each
    ``v[l, 0, f]`` (``reg_v``) with ``h_r = x_rl (q_r - v[l, f] x_rl)``. Rendle et al. (2011).
    """
    n = resid.shape[0]
    n_feat = colptr.shape[0] - 1
    k = v.shape[2]
    total = 0.0
    for r in range(n):
        total += resid[r]
    old = w0[0]
    new = (total + n * old) / (n + reg_w0)
    delta = np.float32(new - old)
    w0[0] = new
    for r in range(n):
        resid[r] -= delta
    for j in range(n_feat):
        lo = colptr[j]
        hi = colptr[j + 1]
        old = w[j]
        num = 0.0
        den = 1.0 * reg_w
        for p in range(lo, hi):
            x = vals[p]
            num += (resid[rows[p]] + old * x) * x
            den += x * x
        delta = np.float32(num / den - old)
        w[j] = old + delta
        for p in range(lo, hi):
            resid[rows[p]] -= delta * vals[p]
    for f in range(k):
        for r in range(n):
            cache[r] = 0.0
        for j in range(n_feat):
            vj = v[j, 0, f]
            for p in range(colptr[j], colptr[j + 1]):
                cache[rows[p]] += vj * vals[p]
        for j in range(n_feat):
            lo = colptr[j]
            hi = colptr[j + 1]
            old = v[j, 0, f]
            num = 0.0
            den = 1.0 * reg_v
            for p in range(lo, hi):
                r = rows[p]
                x = vals[p]
                h = x * (cache[r] - old * x)
                num += (resid[r] + old * h) * h
                den += h * h
            delta = np.float32(num / den - old)
            v[j, 0, f] = old + delta
            for p in range(lo, hi):
                r = rows[p]
                x = vals[p]
                resid[r] -= delta * x * (cache[r] - old * x)
                cache[r] += delta * x
