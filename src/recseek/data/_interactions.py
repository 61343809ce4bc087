"""The users x items interaction matrix with its vocabularies and side data."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

import numpy as np
import scipy.sparse as sp

from ..errors import DataError
from ._vocab import Vocabulary

if TYPE_CHECKING:
    import pandas as pd

#: How duplicate (user, item) records are merged when building a matrix.
#: ``"last"`` (default) keeps the most recent record (by timestamp when there are
#: timestamps, else the last one in input order); ``"first"`` the earliest; ``"mean"``,
#: ``"sum"`` and ``"max"`` combine the values (the kept timestamp is the latest).
DUPLICATE_POLICIES = ("last", "first", "mean", "sum", "max")


@dataclass(frozen=True, eq=False)
class Interactions:
    """Feedback of users on items.

    Attributes
    ----------
    matrix : scipy.sparse.csr_array, shape (n_users, n_items), float32
        Rating or confidence values; sorted indices, no duplicates, no explicit zeros
        dropped (a zero rating stays stored).
    users, items : Vocabulary
        Raw id <-> index maps. Train and test sets of one split share them.
    timestamps : ndarray of float64, shape (nnz,), optional
        Aligned with ``matrix.data``.
    item_data, user_data : pandas.DataFrame, optional
        Side columns, one row per item / user in index order (e.g. title, genres).
    trust : scipy.sparse.csr_array, shape (n_users, n_users), optional
        A user-user trust (social) graph.
    item_features : scipy.sparse.csr_array, shape (n_items, n_features), float32, optional
        Numeric item features (dense features stored with every entry; an item without
        features has an empty row). ``meta["item_feature_names"]`` may name the columns.
    order : ndarray of int64, shape (nnz,), optional
        Position of each stored entry in the original input (file order), aligned with
        ``matrix.data``; splits use it to break ties in time stably.
    meta : dict
        Free-form extra information (source path, ...). An entry whose first dimension
        equals the number of stored records (an ndarray or a sparse matrix, such as
        ``meta["review_words"]``, shape (nnz, n_words)) is per-record side data aligned
        with ``matrix.data``: :meth:`subset` (and so every split) cuts it alike.

    Side data that models can require (``Recommender.requires``) and where it lives:
    ``"trust"`` (:attr:`trust`), ``"timestamps"``, ``"item_features"``
    (:attr:`item_features`), ``"item_locations"`` (``item_data`` columns ``latitude`` and
    ``longitude``), ``"item_text"`` (string columns of ``item_data``), ``"reviews"``
    (``meta["review_words"]``, word counts per record) and ``"aspects"``
    (``meta["review_aspects"]``, sentiment per aspect per record).
    """

    matrix: sp.csr_array
    users: Vocabulary
    items: Vocabulary
    timestamps: np.ndarray | None = None
    item_data: pd.DataFrame | None = None
    user_data: pd.DataFrame | None = None
    trust: sp.csr_array | None = None
    order: np.ndarray | None = None
    item_features: sp.csr_array | None = None
    meta: dict[str, Any] = field(default_factory=dict)

    # ------------------------------------------------------------------ building
    @classmethod
    def from_arrays(
        cls,
        users: np.ndarray,
        items: np.ndarray,
        values: np.ndarray | None = None,
        timestamps: np.ndarray | None = None,
        *,
        user_vocab: Vocabulary | None = None,
        item_vocab: Vocabulary | None = None,
        duplicates: str = "last",
        source: str = "input",
    ) -> Interactions:
        """Build from raw id arrays (one entry per record).

        When ``user_vocab``/``item_vocab`` are given, ids are encoded with them and
        unknown ids raise; otherwise vocabularies are built in first-seen order.
        ``values`` defaults to 1.0 (implicit feedback).
        """
        users = np.asarray(users)
        items = np.asarray(items)
        n = users.shape[0]
        if items.shape[0] != n:
            raise DataError(f"{source}: users and items have different lengths ({n} vs {items.shape[0]})")
        if values is None:
            values = np.ones(n, dtype=np.float32)
        values = np.asarray(values, dtype=np.float64)
        if values.shape[0] != n:
            raise DataError(f"{source}: values have length {values.shape[0]}, expected {n}")
        if not np.all(np.isfinite(values)):
            bad = int(np.flatnonzero(~np.isfinite(values))[0])
            raise DataError(f"{source}: value of record {bad + 1} is not a finite number")
        if timestamps is not None:
            timestamps = np.asarray(timestamps, dtype=np.float64)
            if timestamps.shape[0] != n:
                raise DataError(f"{source}: timestamps have length {timestamps.shape[0]}, expected {n}")
        if user_vocab is None:
            user_vocab, u = Vocabulary.from_values(users, "user")
        else:
            u = user_vocab.indices(users)
        if item_vocab is None:
            item_vocab, i = Vocabulary.from_values(items, "item")
        else:
            i = item_vocab.indices(items)
        matrix, ts, order = build_csr(u, i, values, timestamps, (len(user_vocab), len(item_vocab)), duplicates)
        return cls(matrix, user_vocab, item_vocab, ts, order=order)

    @classmethod
    def from_indices(
        cls,
        u: np.ndarray,
        i: np.ndarray,
        values: np.ndarray,
        timestamps: np.ndarray | None,
        like: Interactions,
        duplicates: str = "last",
    ) -> Interactions:
        """Build with the vocabularies and side data of ``like`` from index arrays."""
        matrix, ts, order = build_csr(u, i, values, timestamps, like.shape, duplicates)
        return replace(like, matrix=matrix, timestamps=ts, order=order)

    # ------------------------------------------------------------------ views
    @property
    def shape(self) -> tuple[int, int]:
        return (len(self.users), len(self.items))

    @property
    def n_users(self) -> int:
        return len(self.users)

    @property
    def n_items(self) -> int:
        return len(self.items)

    @property
    def nnz(self) -> int:
        return int(self.matrix.nnz)

    def __len__(self) -> int:
        return self.nnz

    def __repr__(self) -> str:
        return f"Interactions({self.n_users} users x {self.n_items} items, {self.nnz} records)"

    def user_index(self) -> np.ndarray:
        """Row index of every stored entry (aligned with ``matrix.data``)."""
        return np.repeat(np.arange(self.n_users, dtype=np.int64), np.diff(self.matrix.indptr))

    def to_coo(self) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray | None]:
        """``(user_idx, item_idx, values, timestamps)`` of every stored entry."""
        return (
            self.user_index(),
            self.matrix.indices.astype(np.int64),
            self.matrix.data,
            self.timestamps,
        )

    def subset(self, mask: np.ndarray) -> Interactions:
        """Keep the stored entries where ``mask`` (shape (nnz,)) is true; same vocabularies."""
        mask = np.asarray(mask, dtype=bool)
        u, i, v, t = self.to_coo()
        counts = np.bincount(u[mask], minlength=self.n_users)
        idx = index_dtype(int(counts.sum()))
        indptr = np.zeros(self.n_users + 1, dtype=idx)
        np.cumsum(counts, out=indptr[1:])
        matrix = sp.csr_array((v[mask], i[mask].astype(idx), indptr), shape=self.shape)
        meta = {key: (_cut_records(value, mask) if _per_record(value, self.nnz) else value)
                for key, value in self.meta.items()}
        return replace(
            self,
            meta=meta,
            matrix=matrix,
            timestamps=None if t is None else t[mask],
            order=None if self.order is None else self.order[mask],
        )

    def binarize(self, threshold: float | None = None) -> Interactions:
        """Implicit feedback: keep entries with value >= ``threshold`` and set them to 1."""
        out = self if threshold is None else self.subset(self.matrix.data >= threshold)
        m = out.matrix.copy()
        m.data = np.ones_like(m.data)
        return replace(out, matrix=m)

    def filter_min_rating(self, threshold: float) -> Interactions:
        """Keep only entries whose value is >= ``threshold`` (values unchanged)."""
        return self.subset(self.matrix.data >= threshold)

    def items_of(self, user: int) -> np.ndarray:
        m = self.matrix
        return m.indices[m.indptr[user] : m.indptr[user + 1]]

    def with_vocabularies(self, users: Vocabulary, items: Vocabulary) -> Interactions:
        """Re-express on larger vocabularies that extend the current ones."""
        if not (np.array_equal(users.ids[: self.n_users], self.users.ids)
                and np.array_equal(items.ids[: self.n_items], self.items.ids)):
            raise DataError("new vocabularies must extend the current ones")
        m = self.matrix
        indptr = np.concatenate([m.indptr, np.full(len(users) - self.n_users, m.indptr[-1], dtype=m.indptr.dtype)])
        matrix = sp.csr_array((m.data, m.indices, indptr), shape=(len(users), len(items)))
        extra: dict[str, Any] = {}
        if self.trust is not None:
            extra["trust"] = _grow(self.trust, (len(users), len(users)))
        if self.item_features is not None:
            extra["item_features"] = _grow(self.item_features, (len(items), self.item_features.shape[1]))
        return replace(self, matrix=matrix, users=users, items=items, **extra)

    # ------------------------------------------------------------------ side data
    def has(self, kind: str) -> bool:
        """Whether side data of ``kind`` is present (see the class docstring for the kinds)."""
        import pandas as pd

        if kind not in SIDE_DATA:
            raise DataError(f"unknown kind of side data {kind!r} (known: {', '.join(SIDE_DATA)})")
        cols = set() if self.item_data is None else set(self.item_data.columns)
        if kind == "trust":
            return self.trust is not None
        if kind == "timestamps":
            return self.timestamps is not None
        if kind == "item_features":
            return self.item_features is not None
        if kind == "item_locations":
            return {"latitude", "longitude"} <= cols
        if kind == "item_text":
            return self.item_data is not None and any(
                pd.api.types.is_string_dtype(self.item_data[c]) or self.item_data[c].dtype == object for c in cols)
        key = "review_words" if kind == "reviews" else "review_aspects"
        return _per_record(self.meta.get(key), self.nnz)


#: Kinds of side data a model can require, with what a user provides for each.
SIDE_DATA: dict[str, str] = {
    "trust": "a user-user trust graph (Interactions.trust; [data] trust = FILE)",
    "timestamps": "a timestamp for every record",
    "item_features": "an item feature matrix (Interactions.item_features; [data] item_features = FILE)",
    "item_locations": "item coordinates (item_data columns latitude and longitude; [data] locations = FILE)",
    "item_text": "item text (string columns of item_data, e.g. titles and genres)",
    "reviews": "review words per record (meta['review_words']; a reviews file read with format 'reviews')",
    "aspects": "aspect sentiments per record (meta['review_aspects']; a reviews file of aspect:sentiment pairs)",
}


def _per_record(value: Any, nnz: int) -> bool:
    """Whether a meta entry is per-record side data (first dimension = number of records)."""
    if isinstance(value, np.ndarray):
        return value.ndim >= 1 and value.shape[0] == nnz
    return sp.issparse(value) and value.shape[0] == nnz


def _cut_records(value: Any, mask: np.ndarray) -> Any:
    if isinstance(value, np.ndarray):
        return value[mask]
    return sp.csr_array(value)[np.flatnonzero(mask)]


def _grow(m: sp.csr_array, shape: tuple[int, int]) -> sp.csr_array:
    """``m`` with empty rows (and columns) appended up to ``shape``."""
    m = sp.csr_array(m)
    indptr = np.concatenate([m.indptr, np.full(shape[0] - m.shape[0], m.indptr[-1], dtype=m.indptr.dtype)])
    return sp.csr_array((m.data, m.indices, indptr), shape=shape)


def index_dtype(nnz: int) -> type:
    """int32 CSR indices and pointers while they fit (scipy then shares them without copies)."""
    return np.int32 if nnz < np.iinfo(np.int32).max else np.int64


def build_csr(
    u: np.ndarray,
    i: np.ndarray,
    values: np.ndarray,
    timestamps: np.ndarray | None,
    shape: tuple[int, int],
    duplicates: str = "last",
) -> tuple[sp.csr_array, np.ndarray | None, np.ndarray]:
    """Canonical CSR (sorted, duplicates merged by ``duplicates``), aligned timestamps and
    the input position of each kept record."""
    if duplicates not in DUPLICATE_POLICIES:
        raise DataError(f"duplicates must be one of {', '.join(DUPLICATE_POLICIES)}, got {duplicates!r}")
    n_users, n_items = shape
    u = np.asarray(u, dtype=np.int64)
    i = np.asarray(i, dtype=np.int64)
    values = np.asarray(values, dtype=np.float64)
    n = u.shape[0]
    if n and (u.min() < 0 or u.max() >= n_users or i.min() < 0 or i.max() >= n_items):
        raise DataError("user or item index out of range")
    # order records by (user, item); within duplicates by time, then input order, so that
    # "last" is the latest record. A stable sort on one combined key keeps input order.
    seq = np.arange(n)
    key = u * np.int64(n_items) + i
    order = np.argsort(key, kind="stable")
    if timestamps is not None and n > 1:
        ks = key[order]
        dup = ks[1:] == ks[:-1]
        if dup.any():
            in_group = np.zeros(n, dtype=bool)
            in_group[1:] |= dup
            in_group[:-1] |= dup
            pos = np.flatnonzero(in_group)
            sub = order[pos]
            t_sub = np.asarray(timestamps, dtype=np.float64)[sub]
            order[pos] = sub[np.lexsort((sub, t_sub, key[sub]))]
    u, i, values, seq = u[order], i[order], values[order], seq[order]
    ts = None if timestamps is None else np.asarray(timestamps, dtype=np.float64)[order]
    if n:
        new = np.ones(n, dtype=bool)
        new[1:] = (u[1:] != u[:-1]) | (i[1:] != i[:-1])
        if not new.all():
            starts = np.flatnonzero(new)
            if duplicates == "first":
                pick = starts
                vals = values[pick]
            else:
                ends = np.append(starts[1:], n) - 1
                pick = ends
                if duplicates == "last":
                    vals = values[pick]
                elif duplicates == "sum":
                    vals = np.add.reduceat(values, starts)
                elif duplicates == "max":
                    vals = np.maximum.reduceat(values, starts)
                else:  # mean
                    vals = np.add.reduceat(values, starts) / np.diff(np.append(starts, n))
            u, i, values, seq = u[pick], i[pick], vals, seq[pick]
            ts = None if ts is None else ts[pick]
    counts = np.bincount(u, minlength=n_users)
    idx = index_dtype(len(u))
    indptr = np.zeros(n_users + 1, dtype=idx)
    np.cumsum(counts, out=indptr[1:])
    matrix = sp.csr_array((values.astype(np.float32), i.astype(idx), indptr), shape=(n_users, n_items))
    return matrix, ts, seq.astype(np.int64)
