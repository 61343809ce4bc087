"""The numpy kernels of the lexical index (installs without numba) give the compiled kernels' results.

Each test runs the same sequence of operations twice, once per backend, and compares the
postings, impacts and hits exactly (the numpy kernels add in the same order).
"""

from __future__ import annotations

import numpy as np
import pytest

from recseek.search import _lexical_kernels, _lexical_numpy, lexical
from recseek.search.lexical import BM25, TFIDF
from test_search_lexical import _corpus, _queries


def _with(backend, monkeypatch, build):
    monkeypatch.setattr(lexical, "_kernels", lambda: backend)
    return build()


def _session(cls, **params):
    """Index, search, delete, add, search, compact, search, filtered search: every kernel runs."""
    docs = _corpus(600)
    m = cls(**params).index(docs[:400])
    queries = _queries(50, seed=7)
    out = [m.search(queries, k=20)]
    m.add(docs[400:])
    m.delete([f"d{i}" for i in range(0, 600, 13)])
    m.add(_corpus(30, seed=5, start=9000))
    out.append(m.search(queries, k=50))
    out.append(m.search(queries, k=10, filter={"lang": "de"}))
    m.compact()
    out.append(m.search(queries, k=50))
    out.append(m.search(["w0 w0 w3", "zzz", ""], k=5))
    seg = m._segments[0]
    return out, (seg.indptr, seg.rows, seg.tf)


@pytest.mark.parametrize("cls,params", [
    (BM25, {"method": "lucene"}), (BM25, {"method": "robertson"}), (BM25, {"method": "atire"}),
    (BM25, {"method": "bm25l"}), (BM25, {"method": "bm25+"}),
    (BM25, {"fields": {"title": 2.0, "text": 1.0}}), (TFIDF, {}), (TFIDF, {"sublinear_tf": False}),
])
def test_numpy_kernels_equal_compiled_kernels(cls, params, monkeypatch):
    hits_c, post_c = _with(_lexical_kernels, monkeypatch, lambda: _session(cls, **params))
    hits_n, post_n = _with(_lexical_numpy, monkeypatch, lambda: _session(cls, **params))
    for a, b in zip(post_c, post_n, strict=True):
        assert a.dtype == b.dtype
        np.testing.assert_array_equal(a, b)
    for a, b in zip(hits_c, hits_n, strict=True):
        np.testing.assert_array_equal(a.ids, b.ids)
        np.testing.assert_array_equal(a.scores, b.scores)
    assert (hits_n[1].ids != "").sum() > 500  # the comparison covers real results


def test_numpy_search_breaks_ties_by_row_and_skips_zero_and_disallowed():
    # two segments; term 0 gives rows 0..3 equal impacts, row 2 disallowed, row 3 only zero
    indptr_all = np.array([0, 3, 3, 4], dtype=np.int64)   # segment 0: 1 term; segment 1: 1 term
    rows_all = np.array([1, 0, 3, 2], dtype=np.int32)
    imp_all = np.array([1.0, 1.0, 0.0, 1.0], dtype=np.float32)
    seg_ptr = np.array([0, 2], dtype=np.int64)
    seg_nterms = np.array([1, 1], dtype=np.int64)
    allowed = np.array([True, True, False, True])
    args = (seg_ptr, seg_nterms, indptr_all, rows_all, imp_all, np.array([0, 1]), np.array([0]),
            np.array([1.0], dtype=np.float32), allowed, 4, 3, 1)
    rows_n, scores_n = _lexical_numpy.search(*args)
    rows_c, scores_c = _lexical_kernels.search(*args)
    np.testing.assert_array_equal(rows_n, [[0, 1, -1]])
    np.testing.assert_array_equal(rows_n, rows_c)
    np.testing.assert_array_equal(scores_n, scores_c)
