"""Lexical retrieval: BM25 variants and TF-IDF against naive formulas and bm25s, updates, filters, persistence."""

from __future__ import annotations

import math
from collections import Counter

import numpy as np
import pytest

from recseek.errors import DataError, ModelFileError, ParameterError
from recseek.search import Document, Hits
from recseek.search.analysis import Analyzer
from recseek.search.lexical import BM25, TFIDF, LexicalRetriever

PLAIN = {"stopwords": None, "stemmer": None}


def _corpus(n: int = 300, seed: int = 0, start: int = 0) -> list[dict]:
    rng = np.random.default_rng(seed)
    vocab = np.array([f"w{i}" for i in range(400)])
    p = 1.0 / np.arange(1, 401) ** 1.1
    p /= p.sum()
    docs = []
    for i in range(start, start + n):
        title = " ".join(rng.choice(vocab, size=rng.integers(1, 6), p=p))
        text = " ".join(rng.choice(vocab, size=rng.integers(0, 60), p=p))
        docs.append({"id": f"d{i}", "title": title, "text": text, "year": int(rng.integers(1990, 2020)),
                     "lang": str(rng.choice(["en", "de", "fr"]))})
    return docs


def _queries(n: int = 40, seed: int = 1) -> list[str]:
    rng = np.random.default_rng(seed)
    return [" ".join(f"w{j}" for j in rng.integers(0, 120, size=rng.integers(1, 5))) for _ in range(n)]


def _naive_bm25(docs, query, method, k1=1.2, b=0.75, delta=None, weights=(1.0, 1.0)):
    """Score of every document, straight from the formulas (BM25F tf and length)."""
    toks = [(d["title"].split(), d["text"].split()) for d in docs]
    tfs = []
    for t, x in toks:
        c: Counter = Counter()
        for w in t:
            c[w] += weights[0]
        for w in x:
            c[w] += weights[1]
        tfs.append(c)
    dl = np.array([weights[0] * len(t) + weights[1] * len(x) for t, x in toks])
    n = len(docs)
    avg = dl.mean()
    delta = {"bm25l": 0.5, "bm25+": 1.0}.get(method, 0.0) if delta is None else delta
    out = np.zeros(n)
    for term, qtf in Counter(query.split()).items():
        df = sum(1 for c in tfs if c[term] > 0)
        if df == 0:
            continue
        idf = {
            "lucene": math.log(1 + (n - df + 0.5) / (df + 0.5)),
            "robertson": math.log(max((n - df + 0.5) / (df + 0.5), 1.0)),
            "atire": math.log(n / df),
            "bm25l": math.log((n + 1) / (df + 0.5)),
            "bm25+": math.log((n + 1) / df),
        }[method]
        for i, c in enumerate(tfs):
            f = c[term]
            if f <= 0:
                continue
            L = 1 - b + b * dl[i] / avg
            if method in ("lucene", "robertson"):
                s = f / (f + k1 * L)
            elif method == "atire":
                s = f * (k1 + 1) / (f + k1 * L)
            elif method == "bm25l":
                cc = f / L
                s = (k1 + 1) * (cc + delta) / (k1 + cc + delta)
            else:
                s = f * (k1 + 1) / (f + k1 * L) + delta
            out[i] += qtf * idf * s
    return out


def _dense(hits: Hits, q: int, ids: list[str]) -> np.ndarray:
    pos = {d: i for i, d in enumerate(ids)}
    out = np.zeros(len(ids))
    for d, s in hits.row(q):
        out[pos[d]] = s
    return out


@pytest.mark.parametrize("method", ["lucene", "robertson", "atire", "bm25l", "bm25+"])
def test_bm25_variants_match_naive_formula(method):
    docs = _corpus(150)
    ids = [d["id"] for d in docs]
    m = BM25(method=method, k1=1.5, b=0.7, analyzer=Analyzer(**PLAIN)).index(docs)
    queries = _queries(15)
    hits = m.search(queries, k=len(docs))
    for q, text in enumerate(queries):
        np.testing.assert_allclose(_dense(hits, q, ids), _naive_bm25(docs, text, method, 1.5, 0.7), rtol=2e-6, atol=2e-6)


def test_field_weights_are_bm25f():
    docs = _corpus(100)
    ids = [d["id"] for d in docs]
    m = BM25(fields={"title": 2.0, "text": 0.5}, analyzer=Analyzer(**PLAIN)).index(docs)
    queries = _queries(10)
    hits = m.search(queries, k=len(docs))
    for q, text in enumerate(queries):
        np.testing.assert_allclose(
            _dense(hits, q, ids), _naive_bm25(docs, text, "lucene", weights=(2.0, 0.5)), rtol=2e-6, atol=2e-6
        )


@pytest.mark.parametrize("method", ["lucene", "robertson", "atire"])
def test_scores_match_bm25s(method):
    bm25s = pytest.importorskip("bm25s")
    docs = _corpus(200)
    an = Analyzer(**PLAIN)
    m = BM25(method=method, analyzer=an).index(docs)
    ref = bm25s.BM25(method=method, k1=1.2, b=0.75)
    ref.index([an.analyze(d["title"] + " " + d["text"]) for d in docs], show_progress=False)
    queries = _queries(20)
    hits = m.search(queries, k=len(docs))
    ids = [d["id"] for d in docs]
    for q, text in enumerate(queries):
        toks = [t for t in an.analyze(text) if t in ref.vocab_dict]
        expected = ref.get_scores(toks) if toks else np.zeros(len(docs))
        np.testing.assert_allclose(_dense(hits, q, ids), expected, rtol=1e-5, atol=1e-5)


def test_tfidf_matches_naive_cosine():
    docs = _corpus(120)
    ids = [d["id"] for d in docs]
    m = TFIDF(analyzer=Analyzer(**PLAIN)).index(docs)
    toks = [Counter((d["title"] + " " + d["text"]).split()) for d in docs]
    n = len(docs)
    queries = _queries(10)
    hits = m.search(queries, k=n)
    for q, text in enumerate(queries):
        terms = sorted(set(text.split()) | set().union(*[set(c) for c in toks]))
        df = {t: sum(1 for c in toks if c[t] > 0) for t in terms}
        idf = {t: math.log((1 + n) / (1 + df[t])) + 1 if df[t] else 0.0 for t in terms}

        def vec(c, idf=idf, terms=terms):
            v = np.array([(1 + math.log(c[t])) * idf[t] if c[t] > 0 else 0.0 for t in terms])
            nv = np.linalg.norm(v)
            return v / nv if nv > 0 else v

        qv = vec(Counter(text.split()))
        expected = np.array([vec(c) @ qv for c in toks])
        np.testing.assert_allclose(_dense(hits, q, ids), expected, rtol=2e-6, atol=2e-6)
        assert hits.scores[q][np.isfinite(hits.scores[q])].max() <= 1.0 + 1e-6


@pytest.mark.parametrize("cls", [BM25, TFIDF])
def test_delete_and_add_one_percent_equals_fresh_index(cls):
    docs = _corpus(1000)
    rng = np.random.default_rng(3)
    gone = set(rng.choice([d["id"] for d in docs], size=10, replace=False).tolist())
    new = _corpus(10, seed=9, start=5000)
    m = cls().index(docs)
    m.search("w1", k=1)  # scores computed before the update
    m.delete(sorted(gone))
    m.add(new)
    fresh = cls().index([d for d in docs if d["id"] not in gone] + new)
    queries = _queries(60, seed=4)
    a, b = m.search(queries, k=100), fresh.search(queries, k=100)
    np.testing.assert_array_equal(a.ids, b.ids)
    np.testing.assert_allclose(a.scores, b.scores, rtol=0, atol=1e-6)
    m.compact()
    assert m.n_segments == 1 and len(m) == len(fresh)
    c = m.search(queries, k=100)
    np.testing.assert_array_equal(c.ids, b.ids)
    np.testing.assert_allclose(c.scores, b.scores, rtol=0, atol=1e-6)


def test_add_existing_id_replaces_document():
    m = BM25().index([{"id": "a", "text": "wing flutter"}, {"id": "b", "text": "heat transfer"}])
    m.add([{"id": "a", "text": "boundary layer"}])
    assert len(m) == 2
    assert m.search("flutter").row(0) == []
    assert m.search("boundary").row(0)[0][0] == "a"
    fresh = BM25().index([{"id": "b", "text": "heat transfer"}, {"id": "a", "text": "boundary layer"}])
    assert m.search("boundary layer heat").row(0) == fresh.search("boundary layer heat").row(0)


def test_duplicate_ids_and_bad_documents():
    with pytest.raises(DataError, match="'x'"):
        BM25().index([{"id": "x", "text": "a"}, {"id": "x", "text": "b"}])
    with pytest.raises(DataError, match="empty"):
        BM25().index([])
    with pytest.raises(DataError, match="no 'id'"):
        BM25().index([{"text": "a"}])
    with pytest.raises(DataError, match="title, text"):
        BM25().index([{"id": "1", "body": "wing"}])
    with pytest.raises(DataError, match="'title'"):
        BM25().index([{"id": "1", "title": 3}])
    m = BM25().index([{"id": "a", "text": "wing"}])
    with pytest.raises(DataError, match="'zz'"):
        m.delete(["zz"])


def test_parameters_are_checked():
    with pytest.raises(ParameterError, match="method"):
        BM25(method="okapi")
    with pytest.raises(ParameterError, match="b"):
        BM25(b=1.5)
    with pytest.raises(ParameterError, match="weight"):
        BM25(fields={"title": -1})
    m = BM25().index([{"id": "a", "text": "wing"}])
    for k in (0, -3, 2.5, True):
        with pytest.raises(ParameterError, match="k must be"):
            m.search("wing", k=k)


def test_empty_and_stopword_queries_give_empty_rows():
    m = BM25().index(_corpus(50))
    hits = m.search(["", "the of and", "w0"], k=5)
    assert hits.ids.shape == (3, 5) and hits.scores.dtype == np.float32
    assert (hits.ids[:2] == "").all() and np.isneginf(hits.scores[:2]).all()
    assert hits.ids[2, 0] != ""


def test_zero_score_documents_never_fill_k():
    m = BM25().index([{"id": "a", "text": "wing"}, {"id": "b", "text": "plate"}, {"id": "c", "text": "wing plate"}])
    hits = m.search("wing", k=10)
    assert [d for d, _ in hits.row(0)] == ["a", "c"]
    assert (hits.ids[0, 2:] == "").all()
    assert np.all(np.diff(hits.scores[0, :2]) <= 0)


def test_filters_apply_before_topk():
    docs = _corpus(400)
    m = BM25().index(docs)
    queries = _queries(20)
    flt = {"lang": "de", "year": {"gte": 2000, "lt": 2010}}
    hits = m.search(queries, k=10, filter=flt)
    meta = {d["id"]: d for d in docs}
    full = m.search(queries, k=len(docs))
    for q in range(len(queries)):
        got = hits.row(q)
        assert all(meta[d]["lang"] == "de" and 2000 <= meta[d]["year"] < 2010 for d, _ in got)
        expected = [(d, s) for d, s in full.row(q) if meta[d]["lang"] == "de" and 2000 <= meta[d]["year"] < 2010][:10]
        assert [d for d, _ in got] == [d for d, _ in expected]
    with pytest.raises(ParameterError, match="'color'.*lang, year"):
        m.search("w1", filter={"color": "red"})


def test_documents_objects_and_metadata():
    m = BM25(fields=["body"]).index(
        [Document("1", {"body": "wing lift"}, {"lang": "en"}), Document("2", {"body": "wing drag"}, {"lang": "de"})]
    )
    assert m.search("wing", filter={"lang": "de"}).row(0)[0][0] == "2"
    assert m.get_metadata("1") == {"lang": "en"}


def test_batch_equals_single_queries():
    m = BM25().index(_corpus(300))
    queries = _queries(25)
    batch = m.search(queries, k=7)
    for q, text in enumerate(queries):
        one = m.search(text, k=7)
        np.testing.assert_array_equal(one.ids[0], batch.ids[q])
        np.testing.assert_array_equal(one.scores[0], batch.scores[q])


@pytest.mark.parametrize("mmap", [False, True])
def test_save_load_round_trip(tmp_path, mmap):
    docs = _corpus(300)
    m = BM25(method="bm25+", k1=1.1, fields={"title": 2.0, "text": 1.0},
             analyzer=Analyzer(stopwords=["w0"], ngrams=2)).index(docs)
    m.delete(["d3", "d7"])
    m.add(_corpus(5, seed=5, start=900))
    queries = _queries(20)
    before = m.search(queries, k=20, filter={"lang": ["en", "fr"]})
    m.save(tmp_path / "idx")
    back = LexicalRetriever.load(tmp_path / "idx", mmap=mmap)
    assert isinstance(back, BM25) and back.method == "bm25+" and back.analyzer == m.analyzer
    after = back.search(queries, k=20, filter={"lang": ["en", "fr"]})
    np.testing.assert_array_equal(before.ids, after.ids)
    np.testing.assert_array_equal(before.scores, after.scores)
    # a loaded index stays updatable
    back.add([{"id": "new", "text": "w5 qqq"}])
    back.delete(["d10"])
    assert "new" in back and "d10" not in back
    assert back.search("qqq", k=1).row(0)[0][0] == "new"
    back.compact()
    assert back.search("qqq", k=1).row(0)[0][0] == "new"
    with pytest.raises(ModelFileError):
        TFIDF.load(tmp_path / "idx")


def test_load_rejects_other_objects(tmp_path):
    with pytest.raises(ModelFileError):
        BM25.load(tmp_path / "nothing")


def test_delete_everything_then_search():
    m = BM25().index([{"id": "a", "text": "wing"}])
    m.delete("a")
    assert len(m) == 0
    assert m.search("wing").row(0) == []
