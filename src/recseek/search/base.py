"""The retriever contract shared by lexical, dense and hybrid search."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

import numpy as np


@dataclass(frozen=True)
class Document:
    """One document: an id, text fields (e.g. title, body) and metadata for filters."""

    id: str
    fields: Mapping[str, str]
    metadata: Mapping[str, Any] | None = None


@dataclass(frozen=True)
class Hits:
    """Search results for a batch of queries.

    Attributes
    ----------
    ids : ndarray of str, shape (n_queries, k)
        Document ids, best first; ``""`` pads queries with fewer than ``k`` results.
    scores : ndarray of float32, shape (n_queries, k)
        Scores aligned with ``ids``; ``-inf`` where padded.
    """

    ids: np.ndarray
    scores: np.ndarray

    def __len__(self) -> int:
        return int(self.ids.shape[0])

    def row(self, q: int) -> list[tuple[str, float]]:
        """Unpadded ``[(doc_id, score), ...]`` of query ``q``."""
        return [(str(d), float(s)) for d, s in zip(self.ids[q], self.scores[q], strict=True) if d != ""]


@runtime_checkable
class Retriever(Protocol):
    """What every retriever offers: build, update, search, persist."""

    def index(self, docs: Iterable[Document | Mapping[str, Any]]) -> None: ...

    def add(self, docs: Iterable[Document | Mapping[str, Any]]) -> None: ...

    def delete(self, ids: Sequence[str]) -> None: ...

    def search(self, queries: str | Sequence[str], k: int = 10, *, filter: Mapping[str, Any] | None = None) -> Hits: ...

    def save(self, path: Any) -> Any: ...
