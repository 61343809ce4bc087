"""Hybrid fusion (RRF, convex), alpha tuning, and long-document passage retrieval."""

from __future__ import annotations

import re
import zlib

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from recseek.errors import DataError, ModelFileError, ParameterError
from recseek.search.base import Hits
from recseek.search.dense import DenseRetriever
from recseek.search.hybrid import HybridRetriever, convex, load_retriever, rrf
from recseek.search.lexical import BM25
from recseek.search.metrics import evaluate
from recseek.search.passages import PassageRetriever, chunk_tokens


class BagOfWords:
    """A deterministic stand-in encoder: hashed bag of words."""

    name = "bow-hybrid"

    def encode(self, texts):
        out = np.zeros((len(texts), 64), dtype=np.float32)
        for r, t in enumerate(texts):
            for w in re.findall(r"\w+", t.lower()):
                out[r, zlib.crc32(w.encode()) % 64] += 1.0
        return out


def H(rows):
    """Hits from rows of [(id, score), ...], padded."""
    width = max(len(r) for r in rows)
    ids = np.full((len(rows), width), "", dtype="<U8")
    scores = np.full((len(rows), width), -np.inf, dtype=np.float32)
    for q, r in enumerate(rows):
        for j, (d, s) in enumerate(r):
            ids[q, j], scores[q, j] = d, s
    return Hits(ids, scores)


def assert_rows(got, expected):
    assert [d for d, _ in got] == [d for d, _ in expected]
    np.testing.assert_allclose([x for _, x in got], [x for _, x in expected], rtol=1e-6)


A = H([[("x", 3.0), ("y", 2.0), ("z", 1.0)], [("p", 1.0)]])
B = H([[("y", 10.0), ("w", 0.0)], []])


def test_rrf_scores_by_hand():
    fused = rrf([A, B])
    assert_rows(fused.row(0), [("y", 1 / 62 + 1 / 61), ("x", 1 / 61), ("w", 1 / 62), ("z", 1 / 63)])
    assert_rows(fused.row(1), [("p", 1 / 61)])
    weighted = rrf([A, B], k=2, rrf_k=0, weights=[1.0, 3.0])
    assert weighted.ids.shape == (2, 2)
    assert_rows(weighted.row(0), [("y", 1 / 2 + 3.0), ("w", 3 / 2)])


def test_convex_minmax_by_hand():
    fused = convex([A, B], normalize="minmax")
    # A: x 1, y .5, z 0; B: y 1, w 0; missing documents get the list's minimum (0)
    assert_rows(fused.row(0), [("y", 1.5), ("x", 1.0), ("w", 0.0), ("z", 0.0)])
    fused = convex([A, B], weights=[0.9, 0.1], k=1)
    assert_rows(fused.row(0), [("x", 0.9)])


def test_convex_zscore_missing_document_gets_list_minimum():
    fused = dict(convex([A, B], normalize="zscore").row(0))
    za = (np.array([3.0, 2.0, 1.0]) - 2.0) / np.std([3.0, 2.0, 1.0])
    assert fused["x"] == pytest.approx(za[0] + (-1.0))  # x missing from B: B's minimum z is -1
    assert fused["w"] == pytest.approx(za[2] + (-1.0))  # w missing from A: A's minimum
    assert fused["y"] == pytest.approx(za[1] + 1.0)


@settings(max_examples=40, deadline=None)
@given(st.lists(st.integers(-1000, 1000), min_size=1, max_size=12, unique=True))
def test_fusing_one_list_keeps_its_order(scores):
    scores = sorted((s / 10 for s in scores), reverse=True)
    h = H([[(f"d{i}", s) for i, s in enumerate(scores)]])
    for fused in (rrf([h]), convex([h], normalize="minmax"), convex([h], normalize="zscore")):
        assert [d for d, _ in fused.row(0)] == [f"d{i}" for i in range(len(scores))]


def test_fusion_rejects_bad_input():
    with pytest.raises(ParameterError, match="different numbers of queries"):
        rrf([A, H([[("x", 1.0)]])])
    with pytest.raises(ParameterError, match="one number per retriever"):
        convex([A, B], weights=[1.0])
    with pytest.raises(ParameterError, match="normalize"):
        convex([A, B], normalize="softmax")
    with pytest.raises(ParameterError, match="non-negative"):
        rrf([A, B], weights=[-1.0, 1.0])


DOCS = [
    {"id": "1", "title": "wing flutter", "text": "flutter of a swept wing at transonic speed", "topic": "aero"},
    {"id": "2", "title": "boundary layer", "text": "laminar boundary layer on a flat plate", "topic": "aero"},
    {"id": "3", "title": "heat transfer", "text": "heat transfer in hypersonic flow over a cone", "topic": "heat"},
    {"id": "4", "title": "shell buckling", "text": "buckling of thin cylindrical shells under pressure", "topic": "struct"},
    {"id": "5", "title": "plate vibration", "text": "vibration of thin plates and shells", "topic": "struct"},
]


class Reversed:
    """A deliberately bad retriever: ranks documents in reverse id order, ignoring the query."""

    def __init__(self):
        self.ids = []

    def index(self, docs):
        self.ids = sorted((d["id"] for d in docs), reverse=True)

    def search(self, queries, k=10, *, filter=None):
        queries = [queries] if isinstance(queries, str) else list(queries)
        row = self.ids[:k] + [""] * max(0, k - len(self.ids))
        ids = np.array([row] * len(queries), dtype="<U8")
        scores = np.where(ids != "", np.linspace(1, 0, k, dtype=np.float32), -np.inf).astype(np.float32)
        return Hits(ids, scores)


def test_hybrid_retriever_end_to_end(tmp_path):
    hy = HybridRetriever([BM25(), DenseRetriever(encoder=BagOfWords(), cache=False)], method="rrf", depth=5)
    hy.index(DOCS)
    hits = hy.search(["swept wing flutter", "buckling of shells"], k=3)
    assert hits.ids[0, 0] == "1" and hits.ids[1, 0] == "4"
    hits = hy.search("thin shells", k=5, filter={"topic": "struct"})
    assert {d for d, _ in hits.row(0)} == {"4", "5"}
    hy.delete(["4"])
    assert "4" not in hy.search("buckling of shells", k=5).ids[0]
    hy.save(tmp_path / "hy")
    loaded = load_retriever(tmp_path / "hy", encoder=BagOfWords())
    assert isinstance(loaded, HybridRetriever) and loaded.method == "rrf"
    a, b = hy.search(["thin plates", "hypersonic cone"], k=4), loaded.search(["thin plates", "hypersonic cone"], k=4)
    np.testing.assert_array_equal(a.ids, b.ids)
    np.testing.assert_allclose(a.scores, b.scores, rtol=1e-6)


def test_tune_alpha_prefers_the_good_retriever(tmp_path):
    hy = HybridRetriever([BM25(), Reversed()], method="convex", depth=5)
    hy.index(DOCS)
    queries = ["swept wing flutter", "laminar boundary layer", "hypersonic heat transfer"]
    qrels = [{"1": 2}, {"2": 2}, {"3": 1}]
    alpha = hy.tune_alpha(queries, qrels, grid=[0.0, 0.25, 0.5, 0.75, 1.0])
    assert alpha >= 0.75
    assert hy.weights_ == [alpha, 1 - alpha]
    assert evaluate(hy.search(queries, k=10).ids, qrels, ["ndcg@10"])["ndcg@10"] == pytest.approx(
        max(hy.tuning_["ndcg@10"]))
    with pytest.raises(ParameterError, match="two retrievers"):
        HybridRetriever([BM25()]).tune_alpha(queries, qrels)
    with pytest.raises(DataError, match="relevant"):
        hy.tune_alpha(queries, [{}, {}, {}])
    with pytest.raises(ModelFileError, match="no save method"):
        hy.save(tmp_path / "x")
    assert not (tmp_path / "x").exists() and list(tmp_path.iterdir()) == []


# ---------------------------------------------------------------------- passages
LONG = [
    {"id": "long", "title": "A long report",
     "text": " ".join([f"w{i}" for i in range(300)] + ["rotor", "blade", "icing"] + [f"v{i}" for i in range(300)])},
    {"id": "short", "title": "Short note", "text": "rotor maintenance schedule"},
]


def test_chunking_with_overlap():
    toks = [f"t{i}" for i in range(10)]
    chunks = chunk_tokens(toks, 4, 1)
    assert chunks == [["t0", "t1", "t2", "t3"], ["t3", "t4", "t5", "t6"], ["t6", "t7", "t8", "t9"]]
    assert chunk_tokens(toks[:3], 4, 1) == [toks[:3]]
    with pytest.raises(ParameterError, match="overlap"):
        PassageRetriever(BM25, chunk_tokens=8, overlap=8)


@pytest.mark.parametrize("factory", [BM25, lambda: DenseRetriever(encoder=BagOfWords(), cache=False)])
def test_passages_find_the_relevant_part_of_long_documents(factory):
    pr = PassageRetriever(factory, chunk_tokens=16, overlap=4)
    pr.index(LONG)
    assert pr.n_passages > 10
    hits = pr.search("rotor blade icing", k=2)
    assert hits.ids[0, 0] == "long"
    assert set(hits.ids[0]) == {"long", "short"}


def test_passage_mean_aggregation_and_updates(tmp_path):
    pr = PassageRetriever(BM25, chunk_tokens=64, overlap=8, aggregate="mean")
    pr.index(LONG)
    # the long document's one relevant passage is averaged with many irrelevant ones
    assert pr.search("rotor blade icing", k=2).ids[0, 0] == "short"
    best = PassageRetriever(BM25, chunk_tokens=64, overlap=8, aggregate="max")
    best.index(LONG)
    best.delete(["long"])
    assert best.search("rotor", k=2).row(0)[0][0] == "short" and len(best.search("rotor", k=2).row(0)) == 1
    best.add([{"id": "new", "text": "rotor blade icing tests"}])
    assert best.search("rotor blade icing", k=1).ids[0, 0] == "new"
    best.save(tmp_path / "p")
    again = load_retriever(tmp_path / "p")
    np.testing.assert_array_equal(again.search(["rotor", "icing"], k=3).ids, best.search(["rotor", "icing"], k=3).ids)
