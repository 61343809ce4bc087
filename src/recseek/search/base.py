"""The retriever contract shared by lexical, dense and hybrid search."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

import numpy as np

from ..errors import DataError, ParameterError


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
        Document ids, best first; ``""`` pads queries with fewer than ``k`` results. A ``k``
        above the number of documents in the index is clipped to that number (so the width
        never exceeds the collection).
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
    """What every retriever offers: build, update, search, persist.

    Ids are strings; integers are accepted wherever an id is (``index``, ``add``,
    ``delete``) and mean their decimal string. Updates are safe against concurrent
    searches: a search answers from the index as it was before or after each update.
    """

    def index(self, docs: Iterable[Document | Mapping[str, Any]]) -> None: ...

    def add(self, docs: Iterable[Document | Mapping[str, Any]]) -> None: ...

    def delete(self, ids: Sequence[str] | str) -> None: ...

    def search(self, queries: str | Sequence[str], k: int = 10, *, filter: Mapping[str, Any] | None = None) -> Hits: ...

    def save(self, path: Any) -> Any: ...


def check_k(k: Any) -> int:
    """``k`` as an int, or a ParameterError when it is not a positive integer."""
    if isinstance(k, bool) or not isinstance(k, int | np.integer) or k < 1:
        raise ParameterError(f"k must be a positive integer, got {k!r}")
    return int(k)


def check_text(text: str, what: str) -> str:
    """``text`` unchanged, or a DataError when it holds a lone surrogate (not encodable as UTF-8)."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as e:
        raise DataError(
            f"{what} holds an unpaired surrogate (U+{ord(text[e.start]):04X}) at position {e.start}; "
            "text must be valid Unicode"
        ) from None
    return text


def as_queries(queries: Any) -> list[str]:
    """One query string or a sequence of them, as a list; anything else is a ParameterError."""
    if isinstance(queries, str):
        queries = [queries]
    elif queries is None or isinstance(queries, Mapping | bytes) or not isinstance(queries, Iterable):
        raise ParameterError(f"queries must be a string or a sequence of strings, got {type(queries).__name__}")
    out = list(queries)
    for i, q in enumerate(out):
        if not isinstance(q, str):
            raise ParameterError(f"query {i} must be a string, got {type(q).__name__}")
        check_text(q, f"query {i}")
    return out


def doc_id(value: Any, what: str = "document id") -> str:
    """A document id as a string: ids are strings, integers are accepted and turned into strings."""
    if isinstance(value, bool) or not isinstance(value, str | int | np.integer):
        raise DataError(f"{what} must be a string (or an integer), got {type(value).__name__} {value!r}")
    out = str(value)
    if out == "":
        raise DataError(f"{what} is empty")
    return check_text(out, what)


def as_doc_ids(ids: Any, what: str = "delete") -> list[str]:
    """One id or a sequence of ids (strings or integers, as ``index`` accepts) as a list of strings."""
    if isinstance(ids, str | int | np.integer) and not isinstance(ids, bool):
        return [doc_id(ids, f"{what}(): id")]
    if ids is None or isinstance(ids, Mapping | bytes) or not isinstance(ids, Iterable):
        raise DataError(f"{what}() takes a document id or a sequence of ids, got {type(ids).__name__}")
    return [doc_id(i, f"{what}(): id") for i in ids]
