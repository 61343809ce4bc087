"""Long documents: index overlapping passages, score documents by their passages.

Each document's text is split into windows of ``chunk_tokens`` whitespace tokens that
overlap by ``overlap`` tokens; every window is indexed as a passage (id
``"<document id>#<n>"``, field ``text``, the document's metadata) by any retriever —
dense or lexical. A query retrieves passages, and a document's score is the maximum
(``aggregate="max"``, MaxP of Dai & Callan 2019) or the mean over its passages, as in
the LoCoV1 long-context retrieval benchmark (Saad-Falcon et al. 2024, "Benchmarking and
Building Long-Context Retrieval Models with LoCo and M2-BERT").
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import DataError, ModelFileError, ParameterError, RecseekError
from ..models._params import Choice, Int
from .base import Document, Hits, as_doc_ids, as_queries, check_k
from .dense import DEFAULT_FIELDS, parse_texts

__all__ = ["PassageRetriever", "chunk_tokens"]


def chunk_tokens(tokens: Sequence[str], size: int, overlap: int) -> list[list[str]]:
    """Windows of ``size`` tokens, each starting ``size - overlap`` after the previous.

    The last window ends at the last token; a text of at most ``size`` tokens is one
    window (an empty text gives one empty window).
    """
    tokens = list(tokens)
    step = size - overlap
    chunks = [tokens[:size]]
    start = 0
    while start + size < len(tokens):
        start += step
        chunks.append(tokens[start : start + size])
    return chunks


class PassageRetriever:
    """Retrieval of long documents through their passages.

    Parameters
    ----------
    base_factory : callable or retriever
        Makes the passage retriever (e.g. ``BM25`` or ``lambda: DenseRetriever()``), or
        a retriever instance; it must read the ``text`` field (the default of
        :class:`~recseek.search.lexical.BM25` and :class:`~recseek.search.dense.DenseRetriever`).
    chunk_tokens : int
        Passage length in whitespace tokens.
    overlap : int
        Tokens shared by consecutive passages (< ``chunk_tokens``).
    aggregate : {"max", "mean"}
        Document score from its passages' scores. For "mean", passages outside the
        ``depth`` retrieved count with the lowest retrieved score (0 when the base
        returned fewer than ``depth`` passages), which is exact once ``depth`` covers
        every passage.
    fields : sequence of str
        Document text fields, joined before chunking; other keys are metadata.
    depth : int
        Passages retrieved per query before aggregating.
    """

    rules = {"chunk_tokens": Int(lo=1), "overlap": Int(lo=0), "aggregate": Choice(("max", "mean")),
             "depth": Int(lo=1)}

    def __init__(self, base_factory: Callable[[], Any] | Any, chunk_tokens: int = 256, overlap: int = 32,
                 aggregate: str = "max", *, fields: Sequence[str] | None = None, depth: int = 1000) -> None:
        self.base_factory = base_factory
        self.chunk_tokens = chunk_tokens
        self.overlap = overlap
        self.aggregate = aggregate
        self.fields = list(DEFAULT_FIELDS) if fields is None else [fields] if isinstance(fields, str) else list(fields)
        self.depth = depth
        for name, rule in self.rules.items():
            rule.check("PassageRetriever", name, getattr(self, name))
        if overlap >= chunk_tokens:
            raise ParameterError(f"PassageRetriever: overlap ({overlap}) must be smaller than chunk_tokens ({chunk_tokens})")
        if base_factory is not None and not callable(base_factory) and not hasattr(base_factory, "search"):
            raise ParameterError("PassageRetriever: base_factory must be a retriever or a callable making one")
        self.base_: Any = None
        self._passages: dict[str, int] = {}
        # updates (delete old passages, add new ones) and searches take turns, so a search never
        # sees a document with only part of its passages
        self._lock = threading.RLock()

    def __repr__(self) -> str:
        return (f"PassageRetriever({type(self.base_).__name__ if self.base_ is not None else self.base_factory!r}, "
                f"chunk_tokens={self.chunk_tokens}, overlap={self.overlap}, aggregate={self.aggregate!r})")

    def __len__(self) -> int:
        return len(self._passages)

    @property
    def n_passages(self) -> int:
        return int(sum(self._passages.values()))

    # ------------------------------------------------------------ building
    def _base(self) -> Any:
        if self.base_ is None:
            f = self.base_factory
            if f is None:
                raise ParameterError("PassageRetriever: no base retriever; pass base_factory")
            self.base_ = f if (hasattr(f, "search") and not isinstance(f, type)) else f()
            if not callable(getattr(self.base_, "search", None)):
                raise ParameterError(f"PassageRetriever: base_factory made a {type(self.base_).__name__}, not a retriever")
        return self.base_

    def _split(self, docs: Iterable[Document | Mapping[str, Any]]) -> tuple[list[Document], dict[str, int]]:
        ids, texts, metas = parse_texts(docs, self.fields)
        passages: list[Document] = []
        counts: dict[str, int] = {}
        for doc_id, text, meta in zip(ids, texts, metas, strict=True):
            chunks = chunk_tokens(text.split(), self.chunk_tokens, self.overlap)
            counts[doc_id] = len(chunks)
            for j, c in enumerate(chunks):
                passages.append(Document(f"{doc_id}#{j}", {"text": " ".join(c)}, meta or None))
        return passages, counts

    def index(self, docs: Iterable[Document | Mapping[str, Any]]) -> None:
        """Replace the index with ``docs`` (chunked into passages)."""
        passages, counts = self._split(docs)
        if not counts:
            raise DataError("no documents to index (the corpus is empty)")
        with self._lock:
            self._base().index(passages)
            self._passages = counts

    def add(self, docs: Iterable[Document | Mapping[str, Any]]) -> None:
        """Add documents; a document already indexed is replaced (all its passages)."""
        passages, counts = self._split(docs)
        if not counts:
            return
        with self._lock:
            old = [f"{d}#{j}" for d in counts if d in self._passages for j in range(self._passages[d])]
            base = self._base()
            if old:
                base.delete(old)
            base.add(passages)
            self._passages.update(counts)

    def delete(self, ids: Sequence[str]) -> None:
        """Remove documents (and all their passages) by id."""
        ids = list(dict.fromkeys(as_doc_ids(ids, "delete")))
        with self._lock:
            for i in ids:
                if i not in self._passages:
                    raise DataError(f"cannot delete document {i!r}: it is not in the index")
            self._base().delete([f"{d}#{j}" for d in ids for j in range(self._passages[d])])
            for d in ids:
                del self._passages[d]

    # ------------------------------------------------------------ searching
    def search(self, queries: str | Sequence[str], k: int = 10, *, filter: Mapping[str, Any] | None = None) -> Hits:
        """Top-``k`` documents per query, scored from their best (or mean) passages (``k`` clipped to the documents)."""
        qs = as_queries(queries)
        with self._lock:
            k = min(check_k(k), len(self._passages))
            depth = max(self.depth, k)
            hits = self._base().search(qs, k=depth, filter=filter)
            return self.aggregate_hits(hits, k, depth)

    def aggregate_hits(self, hits: Hits, k: int, depth: int | None = None) -> Hits:
        """Document hits from passage hits (ids ``"<doc>#<n>"``)."""
        nq, width = hits.ids.shape
        depth = width if depth is None else depth
        k = min(k, width)  # never more documents than passages
        out_ids = np.full((nq, k), "", dtype=hits.ids.dtype if hits.ids.size else "<U1")
        out_scores = np.full((nq, k), -np.inf, dtype=np.float32)
        valid = hits.ids != ""
        if not valid.any():
            return Hits(out_ids, out_scores)
        q, _ = np.nonzero(valid)
        docs = np.char.rpartition(hits.ids[valid].astype(str), "#")[:, 0]
        scores = hits.scores[valid].astype(np.float64)
        names, code = np.unique(docs, return_inverse=True)
        code = code.ravel()
        key = q.astype(np.int64) * len(names) + code
        ukey, first, inv = np.unique(key, return_index=True, return_inverse=True)
        inv = inv.ravel()
        uq, ucode = ukey // len(names), ukey % len(names)
        if self.aggregate == "max":
            total = np.full(len(ukey), -np.inf)
            np.maximum.at(total, inv, scores)
        else:
            n_found = np.bincount(inv, minlength=len(ukey))
            summed = np.bincount(inv, weights=scores, minlength=len(ukey))
            lowest = np.full(nq, np.inf)
            np.minimum.at(lowest, q, scores)
            full = valid.sum(axis=1) >= depth
            floor = np.where(full, lowest, np.minimum(lowest, 0.0))
            n_total = np.array([self._passages.get(str(d), 0) for d in names], dtype=np.float64)[ucode]
            n_total = np.maximum(n_total, n_found)
            total = (summed + (n_total - n_found) * floor[uq]) / n_total
        # by query, score descending, then first appearance in the passage ranking
        order = np.lexsort((first, -total, uq))
        uq, ucode, total = uq[order], ucode[order], total[order]
        starts = np.searchsorted(uq, np.arange(nq))
        pos = np.arange(len(uq)) - starts[uq]
        keep = pos < k
        out_ids = out_ids.astype(names.dtype) if names.dtype.itemsize > out_ids.dtype.itemsize else out_ids
        out_ids[uq[keep], pos[keep]] = names[ucode[keep]]
        out_scores[uq[keep], pos[keep]] = total[keep]
        return Hits(out_ids, out_scores)

    # ------------------------------------------------------------ persistence
    def get_params(self) -> dict[str, Any]:
        return {"chunk_tokens": self.chunk_tokens, "overlap": self.overlap, "aggregate": self.aggregate,
                "fields": self.fields, "depth": self.depth}

    def save(self, path: str | os.PathLike) -> Path:
        """Save the settings and document table (``arrays.npz``) and the base in ``part0/``."""
        from .hybrid import save_composite

        with self._lock:
            ids = np.array(list(self._passages), dtype=str) if self._passages else np.zeros(0, dtype="<U1")
            counts = np.array(list(self._passages.values()), dtype=np.int64)
            return save_composite(path, "PassageRetriever", self.get_params(), [self._base()],
                                  arrays={"doc_ids": ids, "passages": counts})

    @classmethod
    def load(cls, path: str | os.PathLike, **kwargs: Any) -> PassageRetriever:
        """Load a saved passage index; ``kwargs`` (e.g. ``encoder=``) reach the base retriever."""
        from ._checks import IndexFile, read_index_bundle
        from .hybrid import load_composite

        manifest, parts = load_composite(path, "PassageRetriever", **kwargs)
        _, arrays = read_index_bundle(path)
        f = IndexFile(path, manifest, arrays)
        if len(parts) != 1:
            raise f.fail(f"a passage index has one base retriever, this one lists {len(parts)}")
        try:
            obj = cls(parts[0], **f.entry("params", dict))
        except (RecseekError, TypeError) as e:
            raise ModelFileError(f"{path}: the saved settings are invalid ({e})") from None
        ids = f.array("doc_ids", "U", (None,))
        counts = f.array("passages", np.int64, (ids.shape[0],))
        f.within("passages", counts, 1, np.iinfo(np.int64).max)
        f.unique_ids("doc_ids", ids, np.ones(ids.shape[0], dtype=bool))
        if int(counts.sum()) != len(parts[0]):
            raise f.fail(f"the document table lists {int(counts.sum())} passages, the base index holds {len(parts[0])}")
        obj.base_ = parts[0]
        obj._passages = dict(zip(ids.tolist(), counts.tolist(), strict=True))
        return obj
