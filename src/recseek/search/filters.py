"""Per-document metadata columns and the filters evaluated over them.

A :class:`MetadataStore` keeps one column per metadata field, one row per indexed
document (rows are the retriever's internal document positions). Numbers (and booleans)
are stored as float64, everything else as unicode strings; each column has a presence
mask, so a document without the field never matches a condition on it.

Filter syntax (all conditions must hold)::

    {"lang": "en"}                          # equality
    {"lang": ["en", "de"]}                  # membership (same as {"in": [...]})
    {"lang": {"in": ["en", "de"]}}
    {"year": {"gte": 1990, "lt": 2000}}     # range: gt, gte, lt, lte
    {"year": {"eq": 1999}}, {"lang": {"ne": "en"}}

Deleted rows never match. A field no document has is an error naming it and listing the
known fields.
"""

from __future__ import annotations

import numbers
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import numpy as np

from ..errors import DataError, ParameterError

__all__ = ["MetadataStore", "OPERATORS"]

#: Comparison operators accepted inside a field's condition dict.
OPERATORS = ("eq", "ne", "in", "gt", "gte", "lt", "lte")


def _is_number(v: Any) -> bool:
    return isinstance(v, numbers.Real) and not isinstance(v, str)


class _Column:
    """A growable column: float64 or unicode values plus a presence mask."""

    __slots__ = ("kind", "values", "present", "n")

    def __init__(self, kind: str, capacity: int = 16) -> None:
        self.kind = kind  # "number" or "string"
        self.values = np.full(capacity, np.nan) if kind == "number" else np.zeros(capacity, dtype="<U1")
        self.present = np.zeros(capacity, dtype=bool)
        self.n = 0

    def grow_to(self, n: int) -> None:
        cap = self.values.shape[0]
        if n <= cap:
            return
        new = max(n, 2 * cap)
        if self.kind == "number":
            vals = np.full(new, np.nan)
        else:
            vals = np.zeros(new, dtype=self.values.dtype)
        vals[:cap] = self.values
        pres = np.zeros(new, dtype=bool)
        pres[:cap] = self.present
        self.values, self.present = vals, pres

    def put(self, start: int, rows: np.ndarray, vals: list[Any]) -> None:
        """Set ``values[start + rows] = vals`` for rows that have the field."""
        if not len(vals):
            return
        pos = start + rows
        if self.kind == "number":
            self.values[pos] = np.asarray(vals, dtype=np.float64)
        else:
            arr = np.asarray(vals, dtype=str)
            if arr.dtype.itemsize > self.values.dtype.itemsize:
                self.values = self.values.astype(arr.dtype)
            self.values[pos] = arr
        self.present[pos] = True


class MetadataStore:
    """Metadata columns over document rows, with filter evaluation.

    Rows are appended in the order documents are indexed; :meth:`mark_deleted` flags
    rows, :meth:`mask` turns a filter into a boolean array over all rows, and
    :meth:`take` keeps a subset of rows (for compaction).
    """

    def __init__(self) -> None:
        self._cols: dict[str, _Column] = {}
        self._deleted = np.zeros(16, dtype=bool)
        self._n = 0

    def __len__(self) -> int:
        return self._n

    @property
    def fields(self) -> list[str]:
        """Known metadata fields, sorted."""
        return sorted(self._cols)

    @property
    def deleted(self) -> np.ndarray:
        """Boolean array over rows: true where the row was deleted."""
        return self._deleted[: self._n]

    def kind(self, field: str) -> str:
        """``"number"`` or ``"string"``."""
        return self._column(field).kind

    def _column(self, field: str) -> _Column:
        col = self._cols.get(field)
        if col is None:
            known = ", ".join(self.fields) if self._cols else "none"
            raise ParameterError(f"unknown filter field {field!r}; known metadata fields: {known}")
        return col

    # ------------------------------------------------------------------ writing
    def append(self, rows: Sequence[Mapping[str, Any] | None]) -> None:
        """Append one row per mapping (None or {} for a document without metadata).

        Values must be numbers (bool counts as 0/1) or strings; None means absent. A field's
        type is fixed by its first value; a later value of the other type is a DataError.
        """
        start = self._n
        by_field, kinds = self._validate(rows)  # everything is checked before anything changes
        total = start + len(rows)
        if total > self._deleted.shape[0]:
            new = np.zeros(max(total, 2 * self._deleted.shape[0]), dtype=bool)
            new[: self._n] = self._deleted[: self._n]
            self._deleted = new
        for key, (idx, vals) in by_field.items():
            col = self._cols.get(key)
            if col is None:
                col = self._cols[key] = _Column(kinds[key], max(16, total))
            col.grow_to(total)
            col.put(start, np.asarray(idx, dtype=np.int64), vals)
        for col in self._cols.values():
            col.grow_to(total)
            col.n = total
        self._n = total

    def check(self, rows: Sequence[Mapping[str, Any] | None]) -> None:
        """Raise the DataError :meth:`append` would raise for ``rows``, changing nothing."""
        self._validate(rows)

    def _validate(
        self, rows: Sequence[Mapping[str, Any] | None]
    ) -> tuple[dict[str, tuple[list[int], list[Any]]], dict[str, str]]:
        """Each field's (row positions, values) and kind; a DataError when a value is invalid."""
        start = self._n
        by_field: dict[str, tuple[list[int], list[Any]]] = {}
        for i, meta in enumerate(rows):
            if not meta:
                continue
            for key, value in meta.items():
                if value is None:
                    continue
                entry = by_field.get(key)
                if entry is None:
                    entry = by_field[key] = ([], [])
                entry[0].append(i)
                entry[1].append(value)
        kinds: dict[str, str] = {}
        for key, (idx, vals) in by_field.items():
            if not isinstance(key, str):
                raise DataError(f"metadata field names must be strings, got {key!r}")
            first_kind = None
            for j, v in zip(idx, vals, strict=True):
                if _is_number(v):
                    kind = "number"
                elif isinstance(v, str):
                    kind = "string"
                else:
                    raise DataError(
                        f"metadata field {key!r} of document {start + j} must be a number or a string, "
                        f"got {type(v).__name__}"
                    )
                expected = self._cols[key].kind if key in self._cols else first_kind
                if expected is not None and kind != expected:
                    raise DataError(
                        f"metadata field {key!r} holds {expected}s but document {start + j} gives {v!r}"
                    )
                first_kind = first_kind or kind
            kinds[key] = first_kind  # type: ignore[assignment]
        return by_field, kinds

    def mark_deleted(self, rows: Iterable[int] | np.ndarray) -> None:
        rows = np.asarray(rows, dtype=np.int64)
        if rows.size and (rows.min() < 0 or rows.max() >= self._n):
            raise ParameterError(f"row out of range 0..{self._n - 1}")
        self._deleted[rows] = True

    def take(self, rows: np.ndarray) -> MetadataStore:
        """A new store holding only ``rows`` (in that order), renumbered from 0."""
        rows = np.asarray(rows, dtype=np.int64)
        out = MetadataStore()
        out._n = int(rows.size)
        out._deleted = self._deleted[rows].copy() if rows.size else np.zeros(0, dtype=bool)
        for name, col in self._cols.items():
            c = _Column(col.kind, 0)
            c.values = col.values[rows].copy()
            c.present = col.present[rows].copy()
            c.n = out._n
            out._cols[name] = c
        return out

    def frozen(self) -> MetadataStore:
        """A read-only view of the rows as they are now, unaffected by later appends and deletions.

        Column arrays are shared (appends only write rows past the current ones or grow into new
        arrays); the deletion flags are copied.
        """
        out = MetadataStore()
        out._n = self._n
        out._deleted = self._deleted[: self._n].copy()
        for name, col in self._cols.items():
            c = _Column(col.kind, 0)
            c.values, c.present, c.n = col.values, col.present, self._n
            out._cols[name] = c
        return out

    def get(self, row: int) -> dict[str, Any]:
        """Metadata of one row as a dict (absent fields left out)."""
        out: dict[str, Any] = {}
        for name, col in self._cols.items():
            if col.present[row]:
                v = col.values[row].item()
                if col.kind == "number" and float(v).is_integer():
                    v = int(v)
                out[name] = v
        return out

    # ------------------------------------------------------------------ filtering
    def mask(self, filter: Mapping[str, Any] | None) -> np.ndarray:
        """Boolean array over rows: true where the row is not deleted and matches ``filter``."""
        keep = ~self._deleted[: self._n]
        if not filter:
            return keep
        if not isinstance(filter, Mapping):
            raise ParameterError(f"filter must be a dict of field conditions, got {type(filter).__name__}")
        for field, cond in filter.items():
            col = self._column(field)
            keep &= self._field_mask(field, col, cond)
        return keep

    def _field_mask(self, field: str, col: _Column, cond: Any) -> np.ndarray:
        if isinstance(cond, Mapping):
            if not cond:
                raise ParameterError(f"filter on {field!r} has an empty condition")
            out = col.present[: self._n].copy()
            for op, value in cond.items():
                out &= self._op_mask(field, col, op, value)
            return out
        if isinstance(cond, list | tuple | set | frozenset | np.ndarray):
            return self._op_mask(field, col, "in", cond)
        return self._op_mask(field, col, "eq", cond)

    def _value(self, field: str, col: _Column, op: str, value: Any) -> Any:
        if col.kind == "number":
            if not _is_number(value):
                raise ParameterError(f"filter on {field!r}: {op} needs a number (the field holds numbers), got {value!r}")
            return float(value)
        if not isinstance(value, str):
            raise ParameterError(f"filter on {field!r}: {op} needs a string (the field holds strings), got {value!r}")
        return value

    def _op_mask(self, field: str, col: _Column, op: str, value: Any) -> np.ndarray:
        vals = col.values[: self._n]
        present = col.present[: self._n]
        if op == "in":
            if isinstance(value, str) or not isinstance(value, Iterable):
                raise ParameterError(f"filter on {field!r}: 'in' needs a list of values, got {value!r}")
            items = [self._value(field, col, op, v) for v in value]
            if not items:
                return np.zeros(self._n, dtype=bool)
            arr = np.asarray(items, dtype=np.float64 if col.kind == "number" else str)
            return present & np.isin(vals, arr)
        if op not in OPERATORS:
            raise ParameterError(f"filter on {field!r}: unknown operator {op!r}; known: {', '.join(OPERATORS)}")
        v = self._value(field, col, op, value)
        if op == "eq":
            res = vals == v
        elif op == "ne":
            res = vals != v
        elif op == "gt":
            res = vals > v
        elif op == "gte":
            res = vals >= v
        elif op == "lt":
            res = vals < v
        else:
            res = vals <= v
        return present & np.asarray(res, dtype=bool)

    # ------------------------------------------------------------------ persistence
    def to_arrays(self, prefix: str = "meta") -> tuple[dict[str, np.ndarray], dict[str, Any]]:
        """Arrays (no object dtype) and a JSON-able description for saving."""
        arrays: dict[str, np.ndarray] = {f"{prefix}.deleted": self._deleted[: self._n].copy()}
        fields = []
        for i, (name, col) in enumerate(self._cols.items()):
            arrays[f"{prefix}.{i}.values"] = col.values[: self._n].copy()
            arrays[f"{prefix}.{i}.present"] = col.present[: self._n].copy()
            fields.append({"name": name, "kind": col.kind})
        return arrays, {"rows": self._n, "fields": fields}

    @classmethod
    def from_arrays(cls, arrays: Mapping[str, np.ndarray], info: Mapping[str, Any], prefix: str = "meta") -> MetadataStore:
        """The store saved by :meth:`to_arrays`; arrays of the wrong kind or length are a DataError."""
        if not isinstance(info, Mapping) or not isinstance(info.get("fields"), list):
            raise DataError("metadata description is malformed (expected 'rows' and a list of 'fields')")
        n = info.get("rows")
        if isinstance(n, bool) or not isinstance(n, int) or n < 0:
            raise DataError(f"metadata row count {n!r} is not a non-negative integer")
        out = cls()
        out._n = n
        out._deleted = np.array(_saved(arrays, f"{prefix}.deleted", n, "b"))
        for i, f in enumerate(info["fields"]):
            if not isinstance(f, Mapping) or not isinstance(f.get("name"), str) or f.get("kind") not in ("number", "string"):
                raise DataError(f"metadata field {i} is malformed (expected a name and kind number or string)")
            c = _Column(f["kind"], 0)
            c.values = np.array(_saved(arrays, f"{prefix}.{i}.values", n, "f" if f["kind"] == "number" else "U"))
            c.present = np.array(_saved(arrays, f"{prefix}.{i}.present", n, "b"))
            c.n = n
            out._cols[f["name"]] = c
        return out


def _saved(arrays: Mapping[str, np.ndarray], name: str, n: int, kind: str) -> np.ndarray:
    """Saved array ``name``: one-dimensional, ``n`` long, of dtype kind ``kind``; else a DataError."""
    if name not in arrays:
        raise DataError(f"metadata array {name!r} is missing")
    a = arrays[name]
    if not isinstance(a, np.ndarray) or a.ndim != 1 or a.shape[0] != n or a.dtype.kind != kind:
        got = f"{a.dtype} {a.shape}" if isinstance(a, np.ndarray) else type(a).__name__
        raise DataError(f"metadata array {name!r} is {got}, expected {n} values of kind {kind!r}")
    if kind == "f" and a.dtype != np.float64:
        raise DataError(f"metadata array {name!r} is {a.dtype}, expected float64")
    return a
