"""Train / test splits of :class:`~recseek.data.Interactions`.

Every split returns ``(train, test)`` over the same user and item vocabularies (and
side data) as the input; each stored record goes to exactly one side. Per-record
arrays in ``meta`` (length ``nnz``, e.g. review ``comments``) are split along.

Orders within a user (or item): ``order="time"`` sorts by timestamp, ties broken by
position in the input file (``data.order``), so a split is stable and reproducible;
``order="random"`` uses a random permutation drawn from ``seed``. Everything is
vectorised (``numpy.lexsort`` and ranks within groups); no Python loop per user.

=====================  ============================================================
``random_split``       a global random ``ratio`` of the records to train
``ratio_split``        per user (or item) the first ``floor(ratio * n)`` records to
                       train -- the JStarCraft RNS ratio splitter
``leave_one_out``      per user the last ``k`` records to test
``temporal_split``     one global time cutoff
``kfold``              ``k`` folds over the records (a generator)
``given_n``            per user ``n`` records to train, the rest to test
``split``              any of the above by name
=====================  ============================================================
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from typing import Any

import numpy as np

from ..errors import ParameterError
from ._interactions import Interactions

Split = tuple[Interactions, Interactions]
ORDERS = ("time", "random")
METHODS = ("random", "ratio", "leave_one_out", "temporal", "kfold", "given_n")


# ---------------------------------------------------------------------- checks
def _check_data(data: Any, where: str) -> None:
    if not isinstance(data, Interactions):
        raise ParameterError(f"{where}: data must be Interactions, got {type(data).__name__}")


def _check_ratio(ratio: Any, where: str) -> float:
    if isinstance(ratio, bool) or not isinstance(ratio, int | float | np.integer | np.floating) or not 0 < ratio < 1:
        raise ParameterError(f"{where}: ratio must be a number strictly between 0 and 1, got {ratio!r}")
    return float(ratio)


def _check_int(value: Any, name: str, where: str, lo: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < lo:
        raise ParameterError(f"{where}: {name} must be an integer >= {lo}, got {value!r}")
    return int(value)


def _check_seed(seed: Any, where: str) -> np.random.Generator:
    if seed is not None and (isinstance(seed, bool) or not isinstance(seed, int | np.integer)):
        raise ParameterError(f"{where}: seed must be an integer or None, got {seed!r}")
    return np.random.default_rng(seed)


def _check_order(order: Any, data: Interactions, where: str) -> None:
    if order not in ORDERS:
        raise ParameterError(f"{where}: order must be 'time' or 'random', got {order!r}")
    if order == "time" and data.timestamps is None:
        raise ParameterError(f"{where}: order='time' needs timestamps and these interactions have none; "
                             f"use order='random'")


# ---------------------------------------------------------------------- helpers
def _input_position(data: Interactions) -> np.ndarray:
    return data.order if data.order is not None else np.arange(data.nnz, dtype=np.int64)


def _sort_keys(data: Interactions, order: str, rng: np.random.Generator) -> tuple[np.ndarray, ...]:
    """``lexsort`` keys (least significant first) giving each record's place within its group."""
    if order == "time":
        return (_input_position(data), data.timestamps)
    return (rng.permutation(data.nnz),)


def _ranks(groups: np.ndarray, n_groups: int, keys: tuple[np.ndarray, ...]) -> tuple[np.ndarray, np.ndarray]:
    """Rank of every record within its group (0 = first by ``keys``) and the group sizes."""
    n = groups.shape[0]
    perm = np.lexsort((*keys, groups))
    counts = np.bincount(groups, minlength=n_groups)
    starts = np.cumsum(counts) - counts
    rank = np.empty(n, dtype=np.int64)
    rank[perm] = np.arange(n, dtype=np.int64) - starts[groups[perm]]
    return rank, counts


def _groups(data: Interactions, by: str, where: str) -> tuple[np.ndarray, int]:
    if by == "user":
        return data.user_index(), data.n_users
    if by == "item":
        return data.matrix.indices.astype(np.int64), data.n_items
    raise ParameterError(f"{where}: by must be 'user' or 'item', got {by!r}")


def _take(data: Interactions, mask: np.ndarray) -> Interactions:
    """``data.subset(mask)`` (which also cuts the per-record entries of ``meta``)."""
    return data.subset(mask)


def _pair(data: Interactions, train: np.ndarray) -> Split:
    return _take(data, train), _take(data, ~train)


# ---------------------------------------------------------------------- splits
def random_split(data: Interactions, ratio: float = 0.8, seed: int | None = 0) -> Split:
    """A random ``floor(ratio * nnz)`` of all records to train, the rest to test."""
    _check_data(data, "random_split")
    ratio = _check_ratio(ratio, "random_split")
    rng = _check_seed(seed, "random_split")
    n = data.nnz
    return _pair(data, rng.permutation(n) < math.floor(ratio * n))


def ratio_split(
    data: Interactions, ratio: float = 0.8, by: str = "user", order: str = "time", seed: int | None = 0
) -> Split:
    """Per user (``by="user"``) or item, the first ``floor(ratio * n)`` of its ``n`` records to train.

    With ``order="time"`` records are sorted by timestamp, ties by input position
    (JStarCraft RNS semantics: a user with one record has none in train). ``seed``
    only matters for ``order="random"``.
    """
    where = "ratio_split"
    _check_data(data, where)
    ratio = _check_ratio(ratio, where)
    rng = _check_seed(seed, where)
    _check_order(order, data, where)
    groups, n_groups = _groups(data, by, where)
    rank, counts = _ranks(groups, n_groups, _sort_keys(data, order, rng))
    n_train = np.floor(ratio * counts).astype(np.int64)
    return _pair(data, rank < n_train[groups])


def leave_one_out(data: Interactions, k: int = 1, order: str = "time", seed: int | None = 0) -> Split:
    """Per user, the last ``k`` records to test; users with ``<= k`` records keep all in train."""
    where = "leave_one_out"
    _check_data(data, where)
    k = _check_int(k, "k", where, 1)
    rng = _check_seed(seed, where)
    _check_order(order, data, where)
    groups, n_groups = _groups(data, "user", where)
    rank, counts = _ranks(groups, n_groups, _sort_keys(data, order, rng))
    size = counts[groups]
    test = (size > k) & (rank >= size - k)
    return _pair(data, ~test)


def temporal_split(data: Interactions, cutoff: float | None = None, ratio: float = 0.8) -> Split:
    """Records before a global time ``cutoff`` to train, the others (``>= cutoff``) to test.

    When ``cutoff`` is None it is the timestamp of the record at position
    ``floor(ratio * nnz)`` in time order, so about ``ratio`` of the records go to train
    (fewer when many share the cutoff time: a timestamp is never on both sides).
    """
    where = "temporal_split"
    _check_data(data, where)
    if data.timestamps is None:
        raise ParameterError(f"{where}: needs timestamps and these interactions have none")
    ts = data.timestamps
    if cutoff is None:
        ratio = _check_ratio(ratio, where)
        if data.nnz == 0:
            return _pair(data, np.zeros(0, dtype=bool))
        cutoff = float(np.sort(ts, kind="stable")[math.floor(ratio * data.nnz)])
    elif isinstance(cutoff, bool) or not isinstance(cutoff, int | float | np.number) or not math.isfinite(cutoff):
        raise ParameterError(f"{where}: cutoff must be a finite timestamp or None, got {cutoff!r}")
    return _pair(data, ts < cutoff)


def _fold_ids(data: Interactions, k: int, seed: int | None, where: str) -> np.ndarray:
    _check_data(data, where)
    k = _check_int(k, "k", where, 2)
    if k > data.nnz:
        raise ParameterError(f"{where}: k={k} is larger than the number of records ({data.nnz})")
    rng = _check_seed(seed, where)
    return rng.permutation(data.nnz) % k


def kfold(data: Interactions, k: int = 5, seed: int | None = 0) -> Iterator[Split]:
    """``k`` (train, test) pairs: records are shuffled into ``k`` folds of sizes differing by
    at most one; fold ``f`` is the test set of pair ``f``."""
    folds = _fold_ids(data, k, seed, "kfold")

    def pairs() -> Iterator[Split]:
        for f in range(k):
            yield _pair(data, folds != f)

    return pairs()


def given_n(data: Interactions, n: int = 10, order: str = "random", seed: int | None = 0) -> Split:
    """Per user, ``n`` records to train (the first ``n`` by ``order``) and the rest to test;
    users with ``<= n`` records keep all in train."""
    where = "given_n"
    _check_data(data, where)
    n = _check_int(n, "n", where, 1)
    rng = _check_seed(seed, where)
    _check_order(order, data, where)
    groups, n_groups = _groups(data, "user", where)
    rank, _ = _ranks(groups, n_groups, _sort_keys(data, order, rng))
    return _pair(data, rank < n)


def split(data: Interactions, method: str, **kwargs: Any) -> Split:
    """Split with ``method``, one of :data:`METHODS`; keyword arguments go to that split.

    ``"kfold"`` returns one pair: fold ``fold`` (default 0) as the test set.
    """
    if method == "kfold":
        fold = kwargs.pop("fold", 0)
        k = kwargs.get("k", 5)
        folds = _fold_ids(data, k, kwargs.get("seed", 0), "split")
        extra = set(kwargs) - {"k", "seed"}
        if extra:
            raise ParameterError(f"split: unknown option {sorted(extra)[0]!r} for method 'kfold'")
        if isinstance(fold, bool) or not isinstance(fold, int | np.integer) or not 0 <= fold < k:
            raise ParameterError(f"split: fold must be an integer in [0, {k - 1}], got {fold!r}")
        return _pair(data, folds != fold)
    functions = {
        "random": random_split,
        "ratio": ratio_split,
        "leave_one_out": leave_one_out,
        "temporal": temporal_split,
        "given_n": given_n,
    }
    if method not in functions:
        raise ParameterError(f"split: method must be one of {', '.join(METHODS)}, got {method!r}")
    try:
        return functions[method](data, **kwargs)
    except TypeError as exc:
        raise ParameterError(f"split: bad option for method {method!r} ({exc})") from None


__all__ = [
    "METHODS",
    "ORDERS",
    "given_n",
    "kfold",
    "leave_one_out",
    "random_split",
    "ratio_split",
    "split",
    "temporal_split",
]
