"""numba kernels of the neighbourhood models: pairwise similarities with top-k pruning and
rating prediction from neighbours.

Everything works on CSR arrays. "Entities" are the objects compared (items for item-based
models, users for user-based ones); "features" are what they share (users, items).
"""

from __future__ import annotations

import numpy as np

from ..._numba import njit, pnjit, prange
from .._topk_kernel import select_topk

#: similarity modes understood by :func:`similarity_topk`
COSINE, JACCARD, PEARSON, ASYMMETRIC, CONDITIONAL, DOT = 0, 1, 2, 3, 4, 5
MODES = {"cosine": COSINE, "jaccard": JACCARD, "pearson": PEARSON,
         "asymmetric": ASYMMETRIC, "conditional": CONDITIONAL, "dot": DOT}


@pnjit
def similarity_topk(e_indptr, e_indices, e_data, f_indptr, f_indices, f_data,
                    norms, counts, mode, shrinkage, alpha, k, min_support, n_blocks):
    """Similarity of every entity to every other one, keeping the ``k`` largest per row.

    ``e_*`` is the entity-major CSR (entities x features), ``f_*`` the feature-major CSR of
    the same matrix. ``norms`` are the entities' L2 norms and ``counts`` their numbers of
    features (for mode ``dot`` the feature-major matrix may be a different one, and the
    similarity is the plain product ``dot``). Modes: cosine ``dot / (|a||b| + shrinkage)``; jaccard
    ``n_ab / (n_a + n_b - n_ab + shrinkage)``; pearson (data already centred)
    ``dot / sqrt(sq_a sq_b) * (n_ab - 1) / (n_ab - 1 + shrinkage)`` with both sums of squares
    over the common features; asymmetric cosine ``dot / (|a|^(2 alpha) |b|^(2 (1-alpha)) +
    shrinkage)``; conditional ``n_ab / (n_a + shrinkage)``. Pairs sharing fewer than
    ``min_support`` features are dropped, as is the entity itself. Returns padded arrays
    ``(cols (n, k), vals (n, k), lens (n,))``.
    """
    n = e_indptr.shape[0] - 1
    cols = np.full((n, k), -1, dtype=np.int32)
    vals = np.zeros((n, k), dtype=np.float32)
    lens = np.zeros(n, dtype=np.int64)
    per = (n + n_blocks - 1) // n_blocks
    need_sq = mode == PEARSON
    for blk in prange(n_blocks):
        dot = np.zeros(n, dtype=np.float64)
        sqa = np.zeros(n, dtype=np.float64)
        sqb = np.zeros(n, dtype=np.float64)
        cnt = np.zeros(n, dtype=np.int32)
        touched = np.empty(n, dtype=np.int32)
        sims = np.empty(n, dtype=np.float64)
        for a in range(blk * per, min(n, (blk + 1) * per)):
            nt = 0
            for p in range(e_indptr[a], e_indptr[a + 1]):
                f = e_indices[p]
                xa = e_data[p]
                for q in range(f_indptr[f], f_indptr[f + 1]):
                    b = f_indices[q]
                    if cnt[b] == 0:
                        touched[nt] = b
                        nt += 1
                    xb = f_data[q]
                    cnt[b] += 1
                    dot[b] += xa * xb
                    if need_sq:
                        sqa[b] += xa * xa
                        sqb[b] += xb * xb
            m = 0
            for t in range(nt):
                b = touched[t]
                c = cnt[b]
                s = 0.0
                if b != a and c >= min_support:
                    if mode == COSINE:
                        den = norms[a] * norms[b] + shrinkage
                        s = dot[b] / den if den > 0 else 0.0
                    elif mode == JACCARD:
                        den = counts[a] + counts[b] - c + shrinkage
                        s = c / den if den > 0 else 0.0
                    elif mode == PEARSON:
                        den = np.sqrt(sqa[b] * sqb[b])
                        if den > 0:
                            s = dot[b] / den
                            if shrinkage > 0:
                                s *= (c - 1.0) / (c - 1.0 + shrinkage)
                    elif mode == DOT:
                        s = dot[b]
                    elif mode == ASYMMETRIC:
                        den = norms[a] ** (2 * alpha) * norms[b] ** (2 * (1 - alpha)) + shrinkage
                        s = dot[b] / den if den > 0 else 0.0
                    else:
                        den = counts[a] + shrinkage
                        s = c / den if den > 0 else 0.0
                if s != 0.0:
                    touched[m] = b
                    sims[m] = s
                    m += 1
                cnt[b] = 0
                dot[b] = 0.0
                sqa[b] = 0.0
                sqb[b] = 0.0
            # ties broken by the lower entity index
            lens[a] = select_topk(sims, touched, m, k, cols[a], vals[a])
    return cols, vals, lens


def padded_to_csr(cols, vals, lens, n_cols):
    """CSR arrays (sorted column indices) from the padded top-k output."""
    import scipy.sparse as sp

    n = cols.shape[0]
    indptr = np.zeros(n + 1, dtype=np.int64)
    np.cumsum(lens, out=indptr[1:])
    mask = np.arange(cols.shape[1])[None, :] < lens[:, None]
    m = sp.csr_array((vals[mask], cols[mask], indptr), shape=(n, n_cols))
    m.sort_indices()
    return m


@pnjit
def topk_rows(indptr, indices, data, k):
    """Keep the ``k`` largest entries of each CSR row (ties: lower column first)."""
    n = indptr.shape[0] - 1
    lens = np.minimum(indptr[1:] - indptr[:-1], k)
    out_ptr = np.zeros(n + 1, dtype=np.int64)
    for r in range(n):
        out_ptr[r + 1] = out_ptr[r] + lens[r]
    out_idx = np.empty(out_ptr[n], dtype=np.int32)
    out_val = np.empty(out_ptr[n], dtype=np.float32)
    for r in prange(n):
        s, e = indptr[r], indptr[r + 1]
        if e - s <= k:
            for p in range(s, e):
                out_idx[out_ptr[r] + p - s] = indices[p]
                out_val[out_ptr[r] + p - s] = data[p]
        else:
            # the k-th best (value, column) is the bar; entries at or above it are kept in column order
            best_c = np.empty(k, dtype=np.int64)
            best_v = np.empty(k, dtype=data.dtype)
            select_topk(data[s:e], indices[s:e], e - s, k, best_c, best_v)
            bar_v = best_v[k - 1]
            bar_c = best_c[k - 1]
            t = out_ptr[r]
            for p in range(s, e):
                if t < out_ptr[r + 1] and (data[p] > bar_v or (data[p] == bar_v and indices[p] <= bar_c)):
                    out_idx[t] = indices[p]
                    out_val[t] = data[p]
                    t += 1
    return out_ptr, out_idx, out_val


@pnjit
def knn_predict(targets, lists, s_indptr, s_indices, s_data, r_indptr, r_indices, r_data,
                k, min_k, positive_only):
    """Weighted mean of neighbours' residuals for pairs ``(targets[p], lists[p])``.

    The neighbours of pair ``p`` are the entries of row ``lists[p]`` of the residual CSR
    ``r_*`` (e.g. the items rated by the user), weighted by their similarity to
    ``targets[p]`` (row of the similarity CSR ``s_*``, sorted indices). The ``k`` most
    similar are used; with ``positive_only`` only positive similarities count. Returns
    ``(offsets, found)``: the weighted mean residual (0 when fewer than ``min_k``
    neighbours) and whether neighbours were found.
    """
    n = targets.shape[0]
    out = np.zeros(n, dtype=np.float32)
    found = np.zeros(n, dtype=np.bool_)
    for p in prange(n):
        t = targets[p]
        row = lists[p]
        ss, se = s_indptr[t], s_indptr[t + 1]
        rs, re = r_indptr[row], r_indptr[row + 1]
        cand_s = np.empty(min(se - ss, re - rs), dtype=np.float64)
        cand_r = np.empty(cand_s.shape[0], dtype=np.float64)
        m = 0
        a, b = ss, rs
        while a < se and b < re:
            ca, cb = s_indices[a], r_indices[b]
            if ca < cb:
                a += 1
            elif cb < ca:
                b += 1
            else:
                sv = s_data[a]
                if sv > 0 or (not positive_only and sv != 0):
                    cand_s[m] = sv
                    cand_r[m] = r_data[b]
                    m += 1
                a += 1
                b += 1
        if m == 0:
            continue
        order = np.arange(m)
        m_use = m
        if m > k:
            # the k most similar, most similar first (ties: earlier position)
            top = np.empty(k, dtype=np.int64)
            m_use = select_topk(cand_s, order, m, k, top, np.empty(k, dtype=np.float64))
            order = top
        if m_use < min_k:
            continue
        num = 0.0
        den = 0.0
        for q in range(m_use):
            sv = cand_s[order[q]]
            num += sv * cand_r[order[q]]
            den += abs(sv)
        if den > 0:
            out[p] = num / den
            found[p] = True
    return out, found


@njit(inline="always")
def _row_times_sparse(x_indices, x_data, lo, hi, w_indptr, w_indices, w_data, out_row) -> None:
    """``out_row += x[lo:hi] @ W`` for one sparse row of x and a CSR matrix W."""
    for p in range(lo, hi):
        j = x_indices[p]
        xv = x_data[p]
        for q in range(w_indptr[j], w_indptr[j + 1]):
            out_row[w_indices[q]] += xv * w_data[q]


@njit
def rows_times_sparse(x_indptr, x_indices, x_data, rows, w_indptr, w_indices, w_data, out) -> None:
    """Dense ``out[r] = x[rows[r]] @ W`` (CSR x, CSR W) on one thread (small batches)."""
    for r in range(rows.shape[0]):
        u = rows[r]
        _row_times_sparse(x_indices, x_data, x_indptr[u], x_indptr[u + 1], w_indptr, w_indices, w_data, out[r])


@pnjit
def rows_times_sparse_parallel(x_indptr, x_indices, x_data, rows, w_indptr, w_indices, w_data, out) -> None:
    """:func:`rows_times_sparse` with the rows spread over all cores."""
    for r in prange(rows.shape[0]):
        u = rows[r]
        _row_times_sparse(x_indices, x_data, x_indptr[u], x_indptr[u + 1], w_indptr, w_indices, w_data, out[r])
