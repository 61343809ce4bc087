"""The lexical index's kernels in plain numpy, for installs without numba.

Same functions, arguments and results as :mod:`recseek.search._lexical_kernels`, and the
same floating-point operations in the same order: every sum that the compiled kernels
accumulate one term at a time is accumulated here in the same sequence (``np.bincount``
and ``np.add.at`` add their inputs in array order), so both give identical postings,
impacts and hits. Searching loops over queries in Python, so batches of many queries are
slower than with numba; building, updating and compacting an index are vectorised.
"""

from __future__ import annotations

import contextlib

import numpy as np

# method codes (must match lexical._METHODS and _lexical_kernels)
LUCENE, ROBERTSON, ATIRE, BM25L, BM25PLUS = 0, 1, 2, 3, 4


def launch_guard() -> contextlib.AbstractContextManager:
    return contextlib.nullcontext()


def get_num_threads() -> int:
    return 1


def _term_of_posting(indptr: np.ndarray) -> np.ndarray:
    n_terms = indptr.shape[0] - 1
    return np.repeat(np.arange(n_terms, dtype=np.int64), np.diff(indptr))


def build_postings(rows, terms, weights, row0, n_rows, n_terms):
    """Term-major postings from token occurrences (see the compiled kernel)."""
    rows = np.asarray(rows)
    terms = np.asarray(terms, dtype=np.int64)
    weights = np.asarray(weights, dtype=np.float64)
    # stable sort by (term, row): tokens of one (term, row) pair stay in input order
    order = np.lexsort((rows, terms))
    t_sorted, r_sorted, w_sorted = terms[order], rows[order], weights[order]
    n = order.shape[0]
    starts = np.ones(n, dtype=bool)
    if n:
        starts[1:] = (t_sorted[1:] != t_sorted[:-1]) | (r_sorted[1:] != r_sorted[:-1])
    group = np.cumsum(starts) - 1
    n_pairs = int(group[-1]) + 1 if n else 0
    tf64 = np.bincount(group, weights=w_sorted, minlength=n_pairs) if n else np.zeros(0)
    post_rows = r_sorted[starts].astype(np.int32)
    indptr = np.zeros(n_terms + 1, dtype=np.int64)
    np.cumsum(np.bincount(t_sorted[starts], minlength=n_terms), out=indptr[1:])
    return indptr, post_rows, tf64.astype(np.float32)


def doc_freqs(indptr, post_rows, alive, out):
    """out[t] += number of alive rows among term t's postings."""
    hit = np.asarray(alive)[post_rows].astype(np.int64)
    out += np.bincount(_term_of_posting(indptr), weights=hit, minlength=out.shape[0]).astype(out.dtype)[: out.shape[0]]


def bm25_impacts(indptr, post_rows, tf, idf, lnorm, k1, delta, method):
    """Impact idf(t) * tfc(tf, row) of each posting; lnorm[row] = 1 - b + b * dl / avgdl."""
    f = tf.astype(np.float64)
    ln = lnorm[post_rows]
    w = np.repeat(np.asarray(idf, dtype=np.float64), np.diff(indptr))
    if method == LUCENE or method == ROBERTSON:
        s = f / (f + k1 * ln)
    elif method == ATIRE:
        s = f * (k1 + 1.0) / (f + k1 * ln)
    elif method == BM25L:
        c = f / ln
        s = (k1 + 1.0) * (c + delta) / (k1 + c + delta)
    else:
        s = f * (k1 + 1.0) / (f + k1 * ln) + delta
    return (w * s).astype(np.float32)


def _tf_weight(f: np.ndarray, sublinear: bool) -> np.ndarray:
    if not sublinear:
        return f
    out = f.copy()
    big = f >= 1.0
    out[big] = 1.0 + np.log(f[big])
    return out


def tfidf_sqnorms(indptr, post_rows, tf, idf, sublinear, out):
    """out[row] += sum over the row's terms of (tf weight * idf)^2, added term by term."""
    w = np.repeat(np.asarray(idf, dtype=np.float64), np.diff(indptr))
    v = _tf_weight(tf.astype(np.float64), sublinear) * w
    np.add.at(out, post_rows, v * v)


def tfidf_impacts(indptr, post_rows, tf, idf, inv_norm, sublinear):
    w = np.repeat(np.asarray(idf, dtype=np.float64), np.diff(indptr))
    return (_tf_weight(tf.astype(np.float64), sublinear) * w * inv_norm[post_rows]).astype(np.float32)


def _segment_postings(seg_ptr, seg_nterms, indptr_all, t):
    """Position ranges of term ``t``'s postings, segment by segment."""
    spans = []
    for s in range(seg_ptr.shape[0]):
        if t < seg_nterms[s]:
            base = seg_ptr[s]
            lo, hi = int(indptr_all[base + t]), int(indptr_all[base + t + 1])
            if hi > lo:
                spans.append((lo, hi))
    return spans


def merge_segments(seg_ptr, seg_nterms, indptr_all, rows_all, tf_all, remap, n_terms):
    """One segment from many: postings of rows with remap[row] >= 0, renumbered."""
    term_parts, pos_parts = [], []
    for s in range(seg_ptr.shape[0]):
        nt = int(seg_nterms[s])
        base = int(seg_ptr[s])
        ip = indptr_all[base: base + nt + 1]
        term_parts.append(_term_of_posting(ip))
        pos_parts.append(np.arange(ip[0], ip[-1], dtype=np.int64))
    terms = np.concatenate(term_parts) if term_parts else np.zeros(0, dtype=np.int64)
    pos = np.concatenate(pos_parts) if pos_parts else np.zeros(0, dtype=np.int64)
    new_rows = remap[rows_all[pos]]
    keep = new_rows >= 0
    terms, pos, new_rows = terms[keep], pos[keep], new_rows[keep]
    order = np.argsort(terms, kind="stable")  # segments, then positions, stay in order within a term
    indptr = np.zeros(n_terms + 1, dtype=np.int64)
    np.cumsum(np.bincount(terms, minlength=n_terms)[:n_terms], out=indptr[1:])
    return indptr, new_rows[order].astype(np.int32), tf_all[pos[order]].astype(np.float32)


def search(seg_ptr, seg_nterms, indptr_all, rows_all, imp_all, q_indptr, q_terms, q_weights, allowed, n_rows, k,
           n_chunks):
    """Top-k rows per query by the sum of weight * impact over the query's terms.

    Only rows with ``allowed[row]`` and a positive score are returned; ties go to the
    lower row. Rows padded with -1 / -inf.
    """
    nq = q_indptr.shape[0] - 1
    out_rows = np.full((nq, k), -1, dtype=np.int64)
    out_scores = np.full((nq, k), -np.inf, dtype=np.float32)
    for q in range(nq):
        rows_parts, val_parts = [], []
        for j in range(int(q_indptr[q]), int(q_indptr[q + 1])):
            w = np.float64(q_weights[j])
            for lo, hi in _segment_postings(seg_ptr, seg_nterms, indptr_all, int(q_terms[j])):
                rows_parts.append(rows_all[lo:hi])
                val_parts.append(w * imp_all[lo:hi].astype(np.float64))
        if not rows_parts:
            continue
        rows = np.concatenate(rows_parts)
        uniq, inv = np.unique(rows, return_inverse=True)
        acc = np.bincount(inv, weights=np.concatenate(val_parts), minlength=uniq.shape[0])
        sc = acc.astype(np.float32).astype(np.float64)
        ok = allowed[uniq] & (sc > 0.0)
        uniq, sc = uniq[ok], sc[ok]
        top = np.lexsort((uniq, -sc))[:k]
        out_rows[q, : top.shape[0]] = uniq[top]
        out_scores[q, : top.shape[0]] = sc[top].astype(np.float32)
    return out_rows, out_scores
