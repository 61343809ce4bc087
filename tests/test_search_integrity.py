"""Search index integrity: updates and persistence agree with a fresh index, damaged files fail cleanly,
concurrent searches during updates stay consistent, bad input gives one clear error."""

from __future__ import annotations

import hashlib
import tempfile
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from recseek.search import BM25, TFIDF, DenseRetriever, HybridRetriever, PassageRetriever
from recseek.search.analysis import Analyzer
from recseek.search.hybrid import load_retriever
from recseek.testing.fixtures import shared_data_dir

WORDS = ["mango", "zebra", "apple", "wing", "flutter", "boundary", "layer", "heat", "shock", "wave", "cone", "jet"]
PLAIN = Analyzer(stemmer=None, stopwords=None)


class HashedWords:
    """A deterministic bag-of-words encoder (word hashed into 32 dimensions), fast and model-free."""

    name = "hashed-words-32"

    def encode(self, texts):
        out = np.zeros((len(texts), 32), dtype=np.float32)
        for i, t in enumerate(texts):
            for w in t.split():
                out[i, int(hashlib.sha1(w.encode()).hexdigest(), 16) % 32] += 1.0
        return out


# ---------------------------------------------------------------------- retrievers under test
def _lexical(method: str):
    return lambda: BM25(method=method, fields=["text"], analyzer=PLAIN)


KINDS = {
    "bm25-lucene": _lexical("lucene"),
    "bm25-robertson": _lexical("robertson"),
    "bm25-atire": _lexical("atire"),
    "bm25l": _lexical("bm25l"),
    "bm25+": _lexical("bm25+"),
    "tfidf": lambda: TFIDF(fields=["text"], analyzer=PLAIN),
    "dense": lambda: DenseRetriever(encoder=HashedWords(), fields=["text"], cache=False, ann="exact"),
    "passages": lambda: PassageRetriever(lambda: BM25(fields=["text"], analyzer=PLAIN), chunk_tokens=3, overlap=1,
                                         fields=["text"]),
    "hybrid": lambda: HybridRetriever([BM25(fields=["text"], analyzer=PLAIN),
                                       DenseRetriever(encoder=HashedWords(), fields=["text"], cache=False,
                                                      ann="exact")]),
}


def _reload(retriever, folder: Path):
    """Save and load again (lexical parts memory-mapped, as the CLI and the server load them)."""
    retriever.save(folder)
    return load_retriever(folder, encoder=HashedWords(), mmap=True)


def _answers(retriever, queries: list[str]) -> list[dict[str, float]]:
    """Per query, every returned document and its score (tie order does not matter)."""
    hits = retriever.search(queries, k=10_000)
    return [{d: s for d, s in hits.row(q)} for q in range(len(queries))]


def _parts(retriever) -> list:
    """The retrievers whose scores are compared: a hybrid's parts (its fused ranks depend on tie order)."""
    return list(retriever.retrievers) if isinstance(retriever, HybridRetriever) else [retriever]


def assert_same_as_fresh(retriever, kind: str, docs: dict[str, str], queries: list[str]) -> None:
    """``retriever`` answers every query with the ids and scores of an index built from ``docs`` alone."""
    if not docs:
        for part in _parts(retriever):
            assert all(not row for row in _answers(part, queries))
        return
    fresh = KINDS[kind]()
    fresh.index([{"id": i, "text": t} for i, t in docs.items()])
    for got_part, want_part in zip(_parts(retriever), _parts(fresh), strict=True):
        got, want = _answers(got_part, queries), _answers(want_part, queries)
        for q, (g, w) in enumerate(zip(got, want, strict=True)):
            assert g.keys() == w.keys(), f"query {queries[q]!r}: ids {sorted(g)} != fresh {sorted(w)}"
            for d in w:
                assert g[d] == pytest.approx(w[d], rel=1e-5, abs=1e-6), f"query {queries[q]!r}, doc {d}"


def apply_ops(kind: str, initial: dict[str, str], ops: list[tuple], folder: Path):
    """Run ``ops`` on a new index of ``initial``; returns the retriever and the documents it should hold."""
    retriever = KINDS[kind]()
    docs = dict(initial)
    retriever.index([{"id": i, "text": t} for i, t in docs.items()])
    for n, op in enumerate(ops):
        if op[0] == "add":
            batch = dict(op[1])
            retriever.add([{"id": i, "text": t} for i, t in batch.items()])
            docs.update(batch)
        elif op[0] == "delete" and docs:
            victims = sorted(docs)[op[1] % len(docs):][: op[2]]
            retriever.delete(victims)
            for v in victims:
                del docs[v]
        elif op[0] == "replace" and docs:
            target = sorted(docs)[op[1] % len(docs)]
            retriever.add([{"id": target, "text": op[2]}])
            docs[target] = op[2]
        elif op[0] == "compact":
            for part in _parts(retriever):
                getattr(part, "compact", lambda: None)()
            if isinstance(retriever, PassageRetriever):
                retriever.base_.compact()
        elif op[0] == "save":
            retriever = _reload(retriever, folder / f"save{n}")
    return retriever, docs


# ---------------------------------------------------------------------- the verified bug
@pytest.mark.parametrize("cls", [BM25, TFIDF])
def test_load_add_save_load_keeps_each_term_with_its_documents(tmp_path, cls):
    index = cls(fields=["text"], analyzer=PLAIN)
    index.index([{"id": "m", "text": "mango apple"}, {"id": "b", "text": "banana"}])
    index.save(tmp_path / "a")
    loaded = cls.load(tmp_path / "a")
    loaded.add([{"id": "z", "text": "zebra"}])
    loaded.save(tmp_path / "b")
    again = cls.load(tmp_path / "b", mmap=True)
    assert [d for d, _ in again.search("zebra").row(0)] == ["z"]
    assert [d for d, _ in again.search("mango").row(0)] == ["m"]
    assert [d for d, _ in again.search("banana").row(0)] == ["b"]
    assert_same_as_fresh(again, "bm25-lucene" if cls is BM25 else "tfidf",
                         {"m": "mango apple", "b": "banana", "z": "zebra"}, ["zebra", "mango", "banana", "apple"])


# ---------------------------------------------------------------------- random update sequences
_ids = st.sampled_from([f"d{i}" for i in range(12)])
_texts = st.lists(st.sampled_from(WORDS), min_size=0, max_size=7).map(" ".join)
_batch = st.lists(st.tuples(_ids, _texts), min_size=1, max_size=4, unique_by=lambda x: x[0])
_ops = st.lists(
    st.one_of(
        st.tuples(st.just("add"), _batch),
        st.tuples(st.just("delete"), st.integers(0, 99), st.integers(1, 3)),
        st.tuples(st.just("replace"), st.integers(0, 99), _texts),
        st.tuples(st.just("compact")),
        st.tuples(st.just("save")),
    ),
    max_size=8,
)
QUERIES = WORDS + ["mango zebra", "wing wing flutter", "heat shock wave cone", "unknownword", ""]


def _check_sequence(kind: str, initial: list, ops: list) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        retriever, docs = apply_ops(kind, dict(initial), ops, Path(tmp))
        assert_same_as_fresh(retriever, kind, docs, QUERIES)
        # and once more after a final save and load
        assert_same_as_fresh(_reload(retriever, Path(tmp) / "final"), kind, docs, QUERIES)


@pytest.mark.parametrize("kind", list(KINDS))
@settings(max_examples=8, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(initial=_batch, ops=_ops)
def test_random_update_sequences_match_a_fresh_index(kind, initial, ops):
    _check_sequence(kind, initial, ops)


@pytest.mark.slow
@pytest.mark.parametrize("kind", list(KINDS))
@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(initial=_batch, ops=_ops)
def test_many_random_update_sequences_match_a_fresh_index(kind, initial, ops):
    _check_sequence(kind, initial, ops)


def test_the_update_property_catches_the_old_vocabulary_bug(tmp_path, monkeypatch):
    """The comparison above goes red when save writes term ids by dict position (the old bug)."""
    from recseek.search import lexical

    def positional(self):
        vocab = self._vocab_map()
        terms = np.asarray(list(vocab), dtype=str)
        order = np.argsort(terms, kind="stable")
        return terms[order], order.astype(np.int64)

    monkeypatch.setattr(lexical.LexicalRetriever, "_term_table", positional)
    ops = [("save",), ("add", [("d9", "zebra")]), ("save",)]
    retriever, docs = apply_ops("bm25-lucene", {"d1": "mango apple", "d2": "banana"}, ops, tmp_path)
    with pytest.raises(AssertionError):
        assert_same_as_fresh(retriever, "bm25-lucene", docs, QUERIES)


# ---------------------------------------------------------------------- Cranfield
def _cranfield() -> tuple[list[dict], list[str]]:
    from recseek.search.io import read_smart, read_smart_queries

    root = shared_data_dir()
    folder = None if root is None else root / "cranfield"
    if folder is None or not (folder / "cran.all.1400").exists():
        pytest.fail("Cranfield not found: set RECSEEK_TEST_DATA to the shared data folder (holding cranfield/)")
    docs = read_smart(folder / "cran.all.1400")
    queries = list(read_smart_queries(folder / "cran.qry").values())
    return docs, queries


def _cranfield_sequences(n_sequences: int, tmp_path: Path) -> None:
    docs, queries = _cranfield()
    texts = {d["id"]: f"{d['title']} {d['text']}" for d in docs}
    pool = sorted(texts, key=int)
    rng = np.random.default_rng(16)
    for s in range(n_sequences):
        kind = ("bm25-lucene", "tfidf", "bm25+")[s % 3]
        chosen = rng.choice(pool, size=120, replace=False)
        initial = {i: texts[i] for i in chosen[:80]}
        ops: list[tuple] = []
        for _ in range(int(rng.integers(3, 9))):
            r = rng.random()
            if r < 0.3:
                batch = rng.choice(pool, size=int(rng.integers(1, 8)), replace=False)
                ops.append(("add", [(i, texts[i]) for i in batch]))
            elif r < 0.5:
                ops.append(("delete", int(rng.integers(0, 1000)), int(rng.integers(1, 6))))
            elif r < 0.65:
                ops.append(("replace", int(rng.integers(0, 1000)), texts[str(rng.choice(pool))]))
            elif r < 0.8:
                ops.append(("compact",))
            else:
                ops.append(("save",))
        retriever, final = apply_ops(kind, initial, ops, tmp_path / f"seq{s}")
        sample = [queries[i] for i in rng.choice(len(queries), size=25, replace=False)]
        assert_same_as_fresh(retriever, kind, final, sample)


def test_cranfield_update_sequences_match_a_fresh_index(tmp_path):
    _cranfield_sequences(12, tmp_path)


@pytest.mark.slow
def test_200_cranfield_update_sequences_match_a_fresh_index(tmp_path):
    _cranfield_sequences(200, tmp_path)
