"""Search index integrity: updates and persistence agree with a fresh index, damaged files fail cleanly,
concurrent searches during updates stay consistent, bad input gives one clear error."""

from __future__ import annotations

import hashlib
import tempfile
import time
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


# ---------------------------------------------------------------------- damaged files
def _corpus(n: int = 160, seed: int = 3) -> list[dict]:
    rng = np.random.default_rng(seed)
    return [{"id": f"d{i}", "title": " ".join(rng.choice(WORDS, 2)), "text": " ".join(rng.choice(WORDS, 9)),
             "year": int(rng.integers(1950, 2000))} for i in range(n)]


@pytest.fixture(scope="module")
def saved(tmp_path_factory):
    """A CLI index folder (lexical/ with two segments and tombstones, dense/ with an HNSW graph), queries, qrels."""
    root = tmp_path_factory.mktemp("saved")
    docs = _corpus()
    lexical = BM25(analyzer=PLAIN)
    lexical.index(docs[:120])
    lexical.add(docs[120:])
    lexical.delete(["d5", "d130"])
    lexical.save(root / "idx" / "lexical")
    dense = DenseRetriever(encoder=HashedWords(), cache=False, ann="hnsw", hnsw_m=4)
    dense.index(docs[:120])
    dense.add(docs[120:])
    dense.delete(["d7"])
    dense.save(root / "dense")
    (root / "queries.tsv").write_text("".join(f"{i}\t{w} {WORDS[(i + 3) % len(WORDS)]}\n" for i, w in enumerate(WORDS)))
    (root / "qrels.txt").write_text("".join(f"{i} 0 d{i * 7 % 160} 1\n" for i in range(len(WORDS))))
    return root


def _fresh_copy(src: Path, dst: Path) -> Path:
    import shutil

    shutil.copytree(src, dst)
    return dst


def _flip(p: Path) -> None:
    data = bytearray(p.read_bytes())
    at = max(0, len(data) // 2 - 8)
    for i in range(at, min(len(data), at + 16)):
        data[i] ^= 0xFF
    p.write_bytes(bytes(data))


def _truncate(p: Path) -> None:
    p.write_bytes(p.read_bytes()[: p.stat().st_size // 2])


def _swap(p: Path, other: Path) -> None:
    a, b = p.read_bytes(), other.read_bytes()
    p.write_bytes(b)
    other.write_bytes(a)


def _partner(folder: Path, name: str) -> Path:
    """Another file of the bundle to swap ``name`` with (same dtype where possible)."""
    pairs = {"seg0.tf.npy": "seg0.impacts.npy", "seg0.rows.npy": "seg1.rows.npy", "seg0.indptr.npy": "seg1.indptr.npy",
             "ids.npy": "terms_sorted.npy", "terms_ids.npy": "seg0.indptr.npy", "arrays.npz": "seg1.tf.npy",
             "manifest.json": "manifest.sha256", "manifest.sha256": "manifest.json", "embeddings.npy": "ann_neighbors.npy",
             "ann_levels.npy": "ann_neighbors.npy"}
    if name in pairs and (folder / pairs[name]).exists():
        return folder / pairs[name]
    return next(f for f in sorted(folder.iterdir()) if f.name != name and f.suffix in (Path(name).suffix, ".npy"))


DAMAGES = ["flip", "truncate", "swap"]


def _damage(folder: Path, name: str, how: str) -> None:
    p = folder / name
    if how == "flip":
        _flip(p)
    elif how == "truncate":
        _truncate(p)
    else:
        _swap(p, _partner(folder, name))


def _assert_clean_error(fn) -> None:
    from recseek.errors import RecseekError

    with pytest.raises(RecseekError) as err:
        fn()
    assert "\n" not in str(err.value) and str(err.value)


LEXICAL_FILES = ["arrays.npz", "manifest.json", "manifest.sha256", "ids.npy", "terms_sorted.npy", "terms_ids.npy",
                 "seg0.indptr.npy", "seg0.rows.npy", "seg0.tf.npy", "seg0.impacts.npy", "seg1.rows.npy"]


@pytest.mark.parametrize("mmap", [True, False])
@pytest.mark.parametrize("how", DAMAGES)
@pytest.mark.parametrize("name", LEXICAL_FILES)
def test_damaged_lexical_file_is_one_clear_error(saved, tmp_path, name, how, mmap):
    from recseek.search import LexicalRetriever

    folder = _fresh_copy(saved / "idx" / "lexical", tmp_path / "lexical")
    _damage(folder, name, how)
    _assert_clean_error(lambda: LexicalRetriever.load(folder, mmap=mmap).search(WORDS, k=20))


DENSE_FILES = ["arrays.npz", "manifest.json", "embeddings.npy", "ann_levels.npy", "ann_offsets.npy", "ann_neighbors.npy"]


@pytest.mark.parametrize("how", DAMAGES)
@pytest.mark.parametrize("name", DENSE_FILES)
def test_damaged_dense_file_is_one_clear_error(saved, tmp_path, name, how):
    folder = _fresh_copy(saved / "dense", tmp_path / "dense")
    _damage(folder, name, how)
    _assert_clean_error(lambda: DenseRetriever.load(folder, encoder=HashedWords()).search(WORDS, k=20))


def _run_cli(*args: str) -> tuple[int, str, str]:
    import subprocess
    import sys

    res = subprocess.run([sys.executable, "-m", "recseek", *args], capture_output=True, text=True, timeout=300)
    return res.returncode, res.stdout, res.stderr


def _assert_cli_error(code: int, err: str) -> None:
    lines = err.strip().splitlines()
    assert code == 2 and len(lines) == 1 and lines[0].startswith("error: "), (code, err)


@pytest.mark.parametrize(("name", "how"), [("seg0.rows.npy", "flip"), ("seg0.indptr.npy", "truncate"),
                                           ("seg0.tf.npy", "swap"), ("manifest.json", "flip"), ("ids.npy", "swap")])
def test_damaged_index_gives_exit_2_and_one_error_line_from_the_cli(saved, tmp_path, name, how):
    idx = _fresh_copy(saved / "idx", tmp_path / "idx")
    _damage(idx / "lexical", name, how)
    _assert_cli_error(*_run_cli("search", str(idx), "mango zebra")[::2])
    code, _, err = _run_cli("search-eval", str(idx), "--queries", str(saved / "queries.tsv"),
                            "--qrels", str(saved / "qrels.txt"))
    _assert_cli_error(code, err)


# ---------------------------------------------------------------------- crafted files (checksums made to match)
def _resign(folder: Path) -> None:
    """Rewrite the manifest's checksums (and the manifest's own) so that only structure can tell."""
    import json

    manifest = json.loads((folder / "manifest.json").read_text())
    for fname in manifest["files"]:
        manifest["files"][fname] = hashlib.sha256((folder / fname).read_bytes()).hexdigest()
    text = json.dumps(manifest, indent=2, sort_keys=True).encode()
    (folder / "manifest.json").write_bytes(text)
    if (folder / "manifest.sha256").exists():
        (folder / "manifest.sha256").write_text(hashlib.sha256(text).hexdigest() + "\n")


def _craft(folder: Path, target: str, change) -> None:
    """Apply ``change`` to one array (``"x.npy"`` or ``"arrays.npz:key"``) or manifest entry (``"manifest:key"``)."""
    import json

    if target.startswith("manifest:"):
        manifest = json.loads((folder / "manifest.json").read_text())
        key = target.split(":", 1)[1]
        manifest[key] = change(manifest[key])
        (folder / "manifest.json").write_text(json.dumps(manifest))
    elif target.startswith("arrays.npz:"):
        key = target.split(":", 1)[1]
        with np.load(folder / "arrays.npz") as z:
            arrays = {k: z[k] for k in z.files}
        arrays[key] = change(arrays[key].copy())
        np.savez(folder / "arrays.npz", **arrays)
    else:
        np.save(folder / target, change(np.load(folder / target).copy()))
    _resign(folder)


def _set(i, v):
    def change(a):
        a[i] = v
        return a
    return change


def _reversed_pair(a):
    a[[0, 1]] = a[[1, 0]]
    return a


LEXICAL_CRAFTS = {
    "row beyond the documents": ("seg0.rows.npy", _set(3, 10**6)),
    "negative row": ("seg1.rows.npy", _set(0, -5)),
    "offsets not monotone": ("seg0.indptr.npy", _set(2, 10**9)),
    "offsets end short": ("seg1.indptr.npy", lambda a: a[:-1]),
    "rows as int64": ("seg0.rows.npy", lambda a: a.astype(np.int64)),
    "scores file swapped for tf": ("seg0.impacts.npy", lambda a: np.load(_CRAFT_DIR[0] / "seg0.tf.npy")),
    "scores doubled": ("seg0.impacts.npy", lambda a: a * 2),
    "tf NaN": ("seg1.tf.npy", _set(0, np.nan)),
    "term ids not a permutation": ("terms_ids.npy", _set(0, 1)),
    "term ids out of range": ("terms_ids.npy", _set(0, 10**6)),
    "terms unsorted": ("terms_sorted.npy", _reversed_pair),
    "ids one short": ("ids.npy", lambda a: a[:-1]),
    "duplicate live id": ("ids.npy", _set(1, "d0")),
    "document frequency off": ("arrays.npz:df", lambda a: a + 1),
    "negative length": ("arrays.npz:lengths", _set(0, -1.0)),
    "deleted flags short": ("arrays.npz:meta.deleted", lambda a: a[:-1]),
    "n_live wrong": ("manifest:n_live", lambda v: v + 1),
    "segments overlap": ("manifest:segment_rows", lambda v: [[0, v[0][1]], [v[0][1] - 1, v[1][1]]]),
    "segments short": ("manifest:segment_rows", lambda v: v[:1]),
    "params invalid": ("manifest:params", lambda v: {**v, "k1": -1}),
}
_CRAFT_DIR: list[Path] = []


@pytest.mark.parametrize("case", list(LEXICAL_CRAFTS))
def test_crafted_lexical_index_with_matching_checksums_is_one_model_file_error(saved, tmp_path, case):
    from recseek.errors import ModelFileError
    from recseek.search import LexicalRetriever

    folder = _fresh_copy(saved / "idx" / "lexical", tmp_path / "lexical")
    _CRAFT_DIR[:] = [folder]
    target, change = LEXICAL_CRAFTS[case]
    _craft(folder, target, change)
    for mmap in (True, False):
        with pytest.raises(ModelFileError) as err:
            LexicalRetriever.load(folder, mmap=mmap).search(WORDS, k=20)
        assert "\n" not in str(err.value)


DENSE_CRAFTS = {
    "embeddings NaN": ("embeddings.npy", _set((0, 0), np.nan)),
    "embeddings one row short": ("embeddings.npy", lambda a: a[:-1]),
    "embeddings float64": ("embeddings.npy", lambda a: a.astype(np.float64)),
    "duplicate live id": ("arrays.npz:ids", _set(1, "d0")),
    "dim wrong": ("manifest:dim", lambda v: v + 1),
    "graph links to a missing element": ("ann_neighbors.npy", _set(0, 10**6)),
    "graph links below -1": ("ann_neighbors.npy", _set(3, -7)),
    "graph truncated": ("ann_neighbors.npy", lambda a: a[: a.shape[0] // 2]),
    "graph offsets out of order": ("ann_offsets.npy", _set(1, -5)),
    "graph level beyond its links": ("ann_levels.npy", _set(0, 40)),
    "graph level lists mismatched": ("ann_levels.npy", lambda a: np.where(a == 1, 2, a).astype(np.int32)),
    "graph levels int64": ("ann_levels.npy", lambda a: a.astype(np.int64)),
    "graph entry point outside": ("manifest:ann_graph", lambda v: {**v, "entry_point": 10**6}),
    "graph m out of range": ("manifest:ann_graph", lambda v: {**v, "m": 10**9}),
}


@pytest.mark.parametrize("case", list(DENSE_CRAFTS))
def test_crafted_dense_index_with_matching_checksums_is_one_model_file_error(saved, tmp_path, case):
    from recseek.errors import ModelFileError

    folder = _fresh_copy(saved / "dense", tmp_path / "dense")
    target, change = DENSE_CRAFTS[case]
    _craft(folder, target, change)
    with pytest.raises(ModelFileError) as err:
        DenseRetriever.load(folder, encoder=HashedWords()).search(WORDS, k=20)
    assert "\n" not in str(err.value)


def test_crafted_index_gives_exit_2_from_the_cli(saved, tmp_path):
    idx = _fresh_copy(saved / "idx", tmp_path / "idx")
    _craft(idx / "lexical", "seg0.rows.npy", _set(3, 10**6))
    _assert_cli_error(*_run_cli("search", str(idx), "mango zebra")[::2])


# ---------------------------------------------------------------------- concurrency
def _writer_ops(n_ops: int, seed: int) -> list[tuple]:
    """A fixed mix of adds (new and replacing), deletes and compactions over ids d0..d199."""
    rng = np.random.default_rng(seed)
    ops: list[tuple] = []
    for _ in range(n_ops):
        r = rng.random()
        if r < 0.5:
            batch = [(f"d{int(j)}", " ".join(rng.choice(WORDS, 6))) for j in rng.choice(200, size=8, replace=False)]
            ops.append(("add", batch))
        elif r < 0.85:
            ops.append(("delete", int(rng.integers(0, 1000)), 3))
        else:
            ops.append(("compact",))
    return ops


def _apply(retriever, docs: dict[str, str], op: tuple) -> None:
    """One op of :func:`apply_ops` (same semantics), used by the writer thread and by the replay."""
    if op[0] == "add":
        retriever.add([{"id": i, "text": t} for i, t in op[1]])
        docs.update(dict(op[1]))
    elif op[0] == "delete" and docs:
        victims = sorted(docs)[op[1] % len(docs):][: op[2]]
        retriever.delete(victims)
        for v in victims:
            del docs[v]
    elif op[0] == "compact":
        for part in _parts(retriever):
            getattr(part, "compact", lambda: None)()


CONCURRENT_QUERIES = ["mango zebra", "wing", "heat shock wave", "cone jet apple"]


def _rows_of(hits) -> list[list[tuple[str, float]]]:
    return [hits.row(q) for q in range(len(hits))]


def _same(got, want) -> bool:
    return all(len(g) == len(w) and all(a[0] == b[0] and abs(a[1] - b[1]) <= 1e-5 * max(1.0, abs(b[1]))
                                        for a, b in zip(g, w, strict=True)) for g, w in zip(got, want, strict=True))


@pytest.mark.parametrize("kind", ["bm25-lucene", "tfidf", "dense", "passages", "hybrid"])
def test_searching_while_another_thread_updates_gives_results_of_some_consistent_state(kind):
    import threading

    initial = {d["id"]: d["text"] for d in _corpus(150, seed=5)}
    ops = _writer_ops(24, seed=7)
    retriever = KINDS[kind]()
    retriever.index([{"id": i, "text": t} for i, t in initial.items()])
    done = threading.Event()
    version = [0]
    seen: list[tuple[int, int, list]] = []
    errors: list[BaseException] = []

    reading = threading.Event()

    def write():
        try:
            docs = dict(initial)
            reading.wait(60)
            for op in ops:
                _apply(retriever, docs, op)
                version[0] += 1
                time.sleep(0.002)  # let searches interleave with the updates
        except BaseException as e:  # reported by the main thread
            errors.append(e)
        finally:
            done.set()

    def read():
        try:
            for _ in range(3000):
                before = version[0]
                rows = _rows_of(retriever.search(CONCURRENT_QUERIES, k=15))
                seen.append((before, version[0], rows))
                reading.set()
                if done.is_set():
                    break
        except BaseException as e:
            errors.append(e)

    threads = [threading.Thread(target=write)] + [threading.Thread(target=read) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=600)
    assert not errors, errors
    # replay the same updates serially and keep every state's answers
    replay = KINDS[kind]()
    replay.index([{"id": i, "text": t} for i, t in initial.items()])
    docs = dict(initial)
    states = [_rows_of(replay.search(CONCURRENT_QUERIES, k=15))]
    for op in ops:
        _apply(replay, docs, op)
        states.append(_rows_of(replay.search(CONCURRENT_QUERIES, k=15)))
    assert sum(1 for b, a, _ in seen if a < len(ops)) >= 5, "too few searches overlapped the updates"
    for before, after, rows in seen:
        candidates = range(before, min(after + 1, len(ops)) + 1)
        assert any(_same(rows, states[s]) for s in candidates), f"a search matched no state in {list(candidates)}"


def test_hnsw_searches_while_another_thread_updates_do_not_crash():
    import threading

    retriever = DenseRetriever(encoder=HashedWords(), fields=["text"], cache=False, ann="hnsw", hnsw_m=4)
    retriever.index([{"id": d["id"], "text": d["text"]} for d in _corpus(150, seed=5)])
    done = threading.Event()
    errors: list[BaseException] = []
    known = {f"d{i}" for i in range(200)}

    def write():
        try:
            docs = {d["id"]: d["text"] for d in _corpus(150, seed=5)}
            for op in _writer_ops(30, seed=9):
                _apply(retriever, docs, op)
                time.sleep(0.002)
        except BaseException as e:
            errors.append(e)
        finally:
            done.set()

    def read():
        try:
            for _ in range(3000):
                hits = retriever.search(CONCURRENT_QUERIES, k=10)
                assert set(hits.ids[hits.ids != ""].tolist()) <= known
                if done.is_set():
                    break
        except BaseException as e:
            errors.append(e)

    threads = [threading.Thread(target=write)] + [threading.Thread(target=read) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=600)
    assert not errors, errors


# ---------------------------------------------------------------------- bad input
BAD_INPUT_KINDS = ["bm25-lucene", "tfidf", "dense", "passages", "hybrid"]


@pytest.fixture
def small():
    def make(kind):
        r = KINDS[kind]()
        r.index([{"id": 5, "text": "mango zebra"}, {"id": "6", "text": "wing flutter"}, {"id": 7, "text": "heat"}])
        return r
    return make


@pytest.mark.parametrize("kind", BAD_INPUT_KINDS)
def test_search_of_none_or_non_strings_is_one_parameter_error(small, kind):
    from recseek.errors import ParameterError

    r = small(kind)
    for bad in (None, 5, [None], ["ok", 3], {"q": "mango"}, b"mango"):
        with pytest.raises(ParameterError, match="quer"):
            r.search(bad)


@pytest.mark.parametrize("kind", BAD_INPUT_KINDS)
def test_integer_ids_are_accepted_the_same_way_by_index_add_and_delete(small, kind):
    from recseek.errors import DataError

    r = small(kind)
    r.delete(5)  # indexed as the integer 5
    r.delete([np.int64(7)])
    assert [d for d, _ in r.search("mango zebra heat wing", k=5).row(0)] == ["6"]
    r.add([{"id": 5, "text": "mango"}])
    r.delete("5")  # the same id as a string
    for bad in (True, 2.5, None, [None], [["6"]]):
        with pytest.raises(DataError, match="id"):
            r.delete(bad)
    with pytest.raises(DataError, match="'9'"):
        r.delete(9)


@pytest.mark.parametrize("kind", ["dense", "hybrid", "bm25-lucene", "passages"])
def test_a_lone_surrogate_in_a_query_or_document_is_one_data_error(small, kind):
    from recseek.errors import DataError

    r = small(kind)
    with pytest.raises(DataError, match="query 1 holds an unpaired surrogate"):
        r.search(["mango", "bad \ud800 query"])
    if kind in ("dense", "hybrid"):
        with pytest.raises(DataError, match="unpaired surrogate"):
            r.add([{"id": "s", "text": "broken \udc80 text"}])
    with pytest.raises(DataError, match="unpaired surrogate"):
        r.add([{"id": "bad\ud800id", "text": "mango"}])
    assert len(r.search("mango", k=3).row(0)) >= 1  # nothing was half-added


@pytest.mark.parametrize("kind", BAD_INPUT_KINDS)
def test_a_huge_k_is_clipped_to_the_collection(small, kind):
    r = small(kind)
    hits = r.search(["mango", "wing"], k=10**12)
    assert hits.ids.shape[0] == 2 and hits.ids.shape[1] <= 3
    assert hits.row(0)[0][0] == "5"
