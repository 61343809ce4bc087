"""numba kernels of the lexical index: posting construction, impact scores, batched search."""

from __future__ import annotations

import contextlib
import importlib
import math
import threading

import numba
import numpy as np

from .._numba import get_num_threads, njit, pnjit, prange

__all__ = ["build_postings", "doc_freqs", "bm25_impacts", "tfidf_sqnorms", "tfidf_impacts", "merge_segments",
           "search", "launch_guard", "get_num_threads"]

# method codes (must match lexical._METHODS)
LUCENE, ROBERTSON, ATIRE, BM25L, BM25PLUS = 0, 1, 2, 3, 4

_LAUNCH_LOCK = threading.Lock()


def _workqueue_only() -> bool:
    """Whether numba may run parallel kernels on its workqueue layer, which two threads may not share."""
    layer = str(numba.config.THREADING_LAYER).lower()
    if layer in ("tbb", "omp", "safe", "threadsafe"):
        return False
    if layer != "default":
        return True  # workqueue, or forksafe (which may pick workqueue)
    for module in ("numba.np.ufunc.tbbpool", "numba.np.ufunc.omppool"):
        try:
            importlib.import_module(module)
            return False
        except ImportError:
            continue
    return True


_SERIALISE = _workqueue_only()


def launch_guard() -> contextlib.AbstractContextManager:
    """Context for a parallel kernel call: a process-wide lock when the threading layer is not thread-safe."""
    return _LAUNCH_LOCK if _SERIALISE else contextlib.nullcontext()


@njit
def build_postings(rows, terms, weights, row0, n_rows, n_terms):
    """Term-major postings from token occurrences.

    rows (int32, global row of each token), terms (int64), weights (float64, the field
    weight of each token) -> indptr (int64, n_terms + 1), post_rows (int32, ascending
    within each term) and tf (float32, summed weights of the (term, row) pair).
    """
    n = rows.shape[0]
    # stable counting sort by row, then by term: postings end up ordered by (term, row)
    cnt = np.zeros(n_rows + 1, dtype=np.int64)
    for i in range(n):
        cnt[rows[i] - row0 + 1] += 1
    for r in range(n_rows):
        cnt[r + 1] += cnt[r]
    by_row = np.empty(n, dtype=np.int64)
    for i in range(n):
        r = rows[i] - row0
        by_row[cnt[r]] = i
        cnt[r] += 1
    tcnt = np.zeros(n_terms + 1, dtype=np.int64)
    for i in range(n):
        tcnt[terms[i] + 1] += 1
    for t in range(n_terms):
        tcnt[t + 1] += tcnt[t]
    order = np.empty(n, dtype=np.int64)
    head = tcnt[:-1].copy()
    for j in range(n):
        i = by_row[j]
        t = terms[i]
        order[head[t]] = i
        head[t] += 1
    # merge repeated (term, row) pairs
    indptr = np.zeros(n_terms + 1, dtype=np.int64)
    post_rows = np.empty(n, dtype=np.int32)
    tf64 = np.empty(n, dtype=np.float64)
    m = 0
    for t in range(n_terms):
        last = -1
        for p in range(tcnt[t], tcnt[t + 1]):
            i = order[p]
            r = rows[i]
            if r == last:
                tf64[m - 1] += weights[i]
            else:
                post_rows[m] = r
                tf64[m] = weights[i]
                m += 1
                last = r
        indptr[t + 1] = m
    return indptr, post_rows[:m].copy(), tf64[:m].astype(np.float32)


@njit
def doc_freqs(indptr, post_rows, alive, out):
    """out[t] += number of alive rows among term t's postings."""
    for t in range(indptr.shape[0] - 1):
        c = 0
        for p in range(indptr[t], indptr[t + 1]):
            if alive[post_rows[p]]:
                c += 1
        out[t] += c


@pnjit
def bm25_impacts(indptr, post_rows, tf, idf, lnorm, k1, delta, method):
    """Impact idf(t) * tfc(tf, row) of each posting; lnorm[row] = 1 - b + b * dl / avgdl."""
    out = np.empty(tf.shape[0], dtype=np.float32)
    n_terms = indptr.shape[0] - 1
    for t in prange(n_terms):
        w = idf[t]
        for p in range(indptr[t], indptr[t + 1]):
            f = np.float64(tf[p])
            ln = lnorm[post_rows[p]]
            if method == LUCENE or method == ROBERTSON:
                s = f / (f + k1 * ln)
            elif method == ATIRE:
                s = f * (k1 + 1.0) / (f + k1 * ln)
            elif method == BM25L:
                c = f / ln
                s = (k1 + 1.0) * (c + delta) / (k1 + c + delta)
            else:
                s = f * (k1 + 1.0) / (f + k1 * ln) + delta
            out[p] = np.float32(w * s)
    return out


@njit
def tf_weight(f, sublinear):
    if sublinear and f >= 1.0:
        return 1.0 + math.log(f)
    return f


@njit
def tfidf_sqnorms(indptr, post_rows, tf, idf, sublinear, out):
    """out[row] += sum over the row's terms of (tf weight * idf)^2."""
    for t in range(indptr.shape[0] - 1):
        w = idf[t]
        for p in range(indptr[t], indptr[t + 1]):
            v = tf_weight(np.float64(tf[p]), sublinear) * w
            out[post_rows[p]] += v * v


@pnjit
def tfidf_impacts(indptr, post_rows, tf, idf, inv_norm, sublinear):
    out = np.empty(tf.shape[0], dtype=np.float32)
    for t in prange(indptr.shape[0] - 1):
        w = idf[t]
        for p in range(indptr[t], indptr[t + 1]):
            out[p] = np.float32(tf_weight(np.float64(tf[p]), sublinear) * w * inv_norm[post_rows[p]])
    return out


@njit
def merge_segments(seg_ptr, seg_nterms, indptr_all, rows_all, tf_all, remap, n_terms):
    """One segment from many: postings of rows with remap[row] >= 0, renumbered.

    Segment s's indptr lives in indptr_all[seg_ptr[s] : seg_ptr[s] + seg_nterms[s] + 1]
    with offsets into rows_all / tf_all.
    """
    n_seg = seg_ptr.shape[0]
    indptr = np.zeros(n_terms + 1, dtype=np.int64)
    for t in range(n_terms):
        c = 0
        for s in range(n_seg):
            if t < seg_nterms[s]:
                base = seg_ptr[s]
                for p in range(indptr_all[base + t], indptr_all[base + t + 1]):
                    if remap[rows_all[p]] >= 0:
                        c += 1
        indptr[t + 1] = indptr[t] + c
    rows = np.empty(indptr[n_terms], dtype=np.int32)
    tf = np.empty(indptr[n_terms], dtype=np.float32)
    m = 0
    for t in range(n_terms):
        for s in range(n_seg):
            if t < seg_nterms[s]:
                base = seg_ptr[s]
                for p in range(indptr_all[base + t], indptr_all[base + t + 1]):
                    r = remap[rows_all[p]]
                    if r >= 0:
                        rows[m] = r
                        tf[m] = tf_all[p]
                        m += 1
    return indptr, rows, tf


@njit
def _worse(s1, r1, s2, r2):
    return s1 < s2 or (s1 == s2 and r1 > r2)


@njit
def _sift_down(hs, hr, i, size):
    while True:
        left = 2 * i + 1
        if left >= size:
            return
        c = left
        right = left + 1
        if right < size and _worse(hs[right], hr[right], hs[left], hr[left]):
            c = right
        if _worse(hs[c], hr[c], hs[i], hr[i]):
            hs[i], hs[c] = hs[c], hs[i]
            hr[i], hr[c] = hr[c], hr[i]
            i = c
        else:
            return


@njit
def _sift_up(hs, hr, i):
    while i > 0:
        parent = (i - 1) // 2
        if _worse(hs[i], hr[i], hs[parent], hr[parent]):
            hs[i], hs[parent] = hs[parent], hs[i]
            hr[i], hr[parent] = hr[parent], hr[i]
            i = parent
        else:
            return


@pnjit
def search(seg_ptr, seg_nterms, indptr_all, rows_all, imp_all, q_indptr, q_terms, q_weights, allowed, n_rows, k,
           n_chunks):
    """Top-k rows per query by the sum of weight * impact over the query's terms.

    Only rows with ``allowed[row]`` and a positive score are returned; ties go to the
    lower row. Rows padded with -1 / -inf.
    """
    nq = q_indptr.shape[0] - 1
    out_rows = np.full((nq, k), -1, dtype=np.int64)
    out_scores = np.full((nq, k), -np.inf, dtype=np.float32)
    n_seg = seg_ptr.shape[0]
    per = (nq + n_chunks - 1) // n_chunks
    for c in prange(n_chunks):
        acc = np.zeros(n_rows, dtype=np.float64)
        seen = np.zeros(n_rows, dtype=np.bool_)
        touched = np.empty(n_rows, dtype=np.int64)
        hs = np.empty(k, dtype=np.float64)
        hr = np.empty(k, dtype=np.int64)
        for q in range(c * per, min(nq, (c + 1) * per)):
            nt = 0
            for j in range(q_indptr[q], q_indptr[q + 1]):
                t = q_terms[j]
                w = np.float64(q_weights[j])
                for s in range(n_seg):
                    if t < seg_nterms[s]:
                        base = seg_ptr[s]
                        for p in range(indptr_all[base + t], indptr_all[base + t + 1]):
                            r = rows_all[p]
                            if not seen[r]:
                                seen[r] = True
                                touched[nt] = r
                                nt += 1
                            acc[r] += w * np.float64(imp_all[p])
            size = 0
            for i in range(nt):
                r = touched[i]
                sc = np.float64(np.float32(acc[r]))
                acc[r] = 0.0
                seen[r] = False
                if not allowed[r] or not sc > 0.0:
                    continue
                if size < k:
                    hs[size] = sc
                    hr[size] = r
                    _sift_up(hs, hr, size)
                    size += 1
                elif _worse(hs[0], hr[0], sc, r):
                    hs[0] = sc
                    hr[0] = r
                    _sift_down(hs, hr, 0, size)
            # pop worst to the back: best first
            for pos in range(size - 1, -1, -1):
                out_rows[q, pos] = hr[0]
                out_scores[q, pos] = np.float32(hs[0])
                last = pos
                hs[0] = hs[last]
                hr[0] = hr[last]
                _sift_down(hs, hr, 0, last)
    return out_rows, out_scores
