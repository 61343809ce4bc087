"""Mapping between raw ids (as found in files) and contiguous integer indices."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import numpy as np

from ..errors import DataError


def _as_id_array(ids: Iterable[Any]) -> np.ndarray:
    """Return ids as an int64 or unicode numpy array (never object dtype)."""
    arr = np.asarray(list(ids) if not isinstance(ids, np.ndarray) else ids)
    if arr.dtype.kind in "iu":
        return arr.astype(np.int64, copy=False)
    if arr.dtype.kind == "U":
        return arr
    if arr.dtype.kind == "f" and arr.size and np.all(np.mod(arr, 1) == 0):
        return arr.astype(np.int64)
    return arr.astype(str)


class Vocabulary:
    """Bidirectional map raw id <-> index ``0 .. len-1``.

    Raw ids are kept as an ``int64`` array when every id is an integer, else as a
    unicode array, so that a vocabulary can be saved without pickle.

    Parameters
    ----------
    ids : sequence
        Distinct raw ids; the position of an id is its index.
    name : str
        What the ids are ("user", "item", "document"), used in error messages.
    """

    __slots__ = ("ids", "name", "_lookup", "_order")

    def __init__(self, ids: Iterable[Any], name: str = "id") -> None:
        self.ids = _as_id_array(ids)
        self.name = name
        self._lookup: dict[Any, int] | None = None
        self._order: np.ndarray | None = None
        if self.ids.ndim != 1:
            raise DataError(f"{name} ids must be one-dimensional")

    @classmethod
    def from_values(cls, values: np.ndarray, name: str = "id") -> tuple[Vocabulary, np.ndarray]:
        """Build a vocabulary from raw values (in first-seen order) and encode them."""
        arr = _as_id_array(values)
        uniq, first, inverse = np.unique(arr, return_index=True, return_inverse=True)
        order = np.argsort(first, kind="stable")  # first-seen order
        rank = np.empty_like(order)
        rank[order] = np.arange(order.size)
        return cls(uniq[order], name), rank[inverse].astype(np.int64)

    def __len__(self) -> int:
        return int(self.ids.shape[0])

    def __repr__(self) -> str:
        return f"Vocabulary({self.name}, {len(self)} ids)"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Vocabulary) and np.array_equal(self.ids, other.ids)

    def __hash__(self) -> int:  # pragma: no cover - vocabularies are not dict keys
        return id(self)

    def _map(self) -> dict[Any, int]:
        if self._lookup is None:
            self._lookup = {k: i for i, k in enumerate(self.ids.tolist())}
        return self._lookup

    def _key(self, raw: Any) -> Any:
        if self.ids.dtype.kind == "i":
            try:
                return int(raw)
            except (TypeError, ValueError):
                return None
        return str(raw)

    def __contains__(self, raw: Any) -> bool:
        return self._key(raw) in self._map()

    def index(self, raw: Any) -> int:
        """Index of one raw id; raises :class:`DataError` if unknown."""
        idx = self._map().get(self._key(raw))
        if idx is None:
            raise DataError(f"unknown {self.name} id {raw!r}")
        return idx

    def _sorter(self) -> np.ndarray:
        if self._order is None:
            self._order = np.argsort(self.ids, kind="stable")
        return self._order

    def indices(self, raws: Iterable[Any], missing: str = "error") -> np.ndarray:
        """Indices of many raw ids (vectorised).

        ``missing="error"`` raises on an unknown id, ``missing="negative"`` gives -1.
        """
        raw = np.asarray(list(raws) if not isinstance(raws, np.ndarray) else raws)
        if raw.ndim != 1:
            raw = raw.reshape(-1)
        out = np.full(raw.shape[0], -1, dtype=np.int64)
        if raw.size and len(self):
            if self.ids.dtype.kind == "i":
                if raw.dtype.kind in "iu":
                    keys, ok = raw.astype(np.int64), np.ones(raw.shape[0], dtype=bool)
                else:
                    conv = np.array([self._key(r) for r in raw.tolist()], dtype=object)
                    ok = np.array([c is not None for c in conv], dtype=bool)
                    keys = np.where(ok, conv, 0).astype(np.int64)
            else:
                keys, ok = raw.astype(str), np.ones(raw.shape[0], dtype=bool)
            sorter = self._sorter()
            pos = np.searchsorted(self.ids, keys, sorter=sorter)
            pos = np.minimum(pos, len(self) - 1)
            cand = sorter[pos]
            found = ok & (self.ids[cand] == keys)
            out[found] = cand[found]
        if missing == "error" and (out < 0).any():
            bad = raw[np.flatnonzero(out < 0)[0]]
            raise DataError(f"unknown {self.name} id {bad.item() if hasattr(bad, 'item') else bad!r}")
        return out

    def id(self, index: int) -> Any:
        """Raw id at ``index`` (a Python int or str)."""
        return self.ids[index].item()

    def lookup(self, indices: np.ndarray) -> np.ndarray:
        """Raw ids for an array of indices (-1 stays -1 for int ids, '' for str ids)."""
        indices = np.asarray(indices, dtype=np.int64)
        out = self.ids[np.clip(indices, 0, max(len(self) - 1, 0))] if len(self) else indices
        if self.ids.dtype.kind == "i":
            return np.where(indices >= 0, out, -1)
        return np.where(indices >= 0, out, "")

    def extend(self, raws: Iterable[Any]) -> Vocabulary:
        """A new vocabulary with the unknown ``raws`` appended (existing indices kept)."""
        lookup = self._map()
        new: list[Any] = []
        seen: set[Any] = set()
        for r in raws:
            key = self._key(r)
            if key is None:
                key = str(r)
            if key not in lookup and key not in seen:
                seen.add(key)
                new.append(key)
        if not new:
            return self
        if self.ids.dtype.kind == "i" and all(isinstance(x, int) for x in new):
            ids = np.concatenate([self.ids, np.asarray(new, dtype=np.int64)])
        else:
            ids = np.concatenate([self.ids.astype(str), np.asarray(new, dtype=str)])
        return Vocabulary(ids, self.name)
