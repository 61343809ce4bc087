"""Cold-start evaluation protocols: cold items, cold users (given N), new releases.

Every protocol is seeded, repeats over folds x seeds and ranks the full candidate pool
(no sampled negatives). Per-user metric values are kept for every (fold, seed), so two
models can be compared with a paired test over the same users
(:mod:`recseek.evaluation.stats`).

Cold items (:func:`cold_item_folds`, :func:`cold_items_split`,
:func:`evaluate_cold_items`)
    Items are partitioned into ``folds`` groups stratified by popularity (items sorted
    by training count, cut into ``strata`` equal bins, each bin dealt out evenly over
    the folds), so every fold holds out about ``1 / folds`` of the items (20% with
    5 folds) with the catalogue's popularity profile. All interactions of the held-out
    items are removed from training; of the remaining (warm) items, a random
    ``warm_test_ratio`` of each user's records is held out as well. Three rankings are
    scored per user with the same model:

    - ``cold``: over the cold items only; relevant = the user's cold-item records;
    - ``mixed``: over every item (warm and cold, training items left out); relevant =
      all the user's held-out records; ``warm`` is the same list scored against the
      warm held-out records only, and ``exposure`` is the share of the top-``k`` slots
      that go to cold items (cold-item exposure@k).

New releases (:func:`new_release_split`)
    The latest ``ratio`` of the items by release (a date column of ``item_data``, else
    the item's first interaction) are the cold items of one split, evaluated as above.

Review-only text (:func:`review_release_split`, :func:`evaluate_review_releases`)
    When an item's only text is its reviews (``musical_instruments``), a cold item
    would have no text at all once its records are held out. The protocol treats each
    item as a new release introduced by one review: the item's *introduction review*
    (its earliest record when the data has timestamps, else one of its records drawn
    at random with the split's seed -- record order in a file is no release order)
    plays the part of its description, and for every item the item text is that one
    review. Items are cut into popularity-stratified folds as above. For a cold item
    the introduction record is in neither training nor the targets: it is a known
    interaction of its reviewer, so that user is never asked to find the item (it is
    left out of that user's rankings, as a seen item is) and the text never describes
    a target of its own author; the item's other records are its cold targets. For a
    warm item the introduction record stays in training (it is never held out), and
    ``warm_test_ratio`` of each user's other warm records are the warm targets. Every
    model therefore sees, for every item, one review and the training records, the
    same kind of text for the items that train a text-to-factor map and for the cold
    items it is applied to.

Cold users (:func:`cold_users_split`, :func:`evaluate_cold_users`)
    A stratified-free random ``ratio`` of the users is removed from training; each gives
    ``given`` of its records (random) to the model at recommendation time
    (``recommend_new``, fold-in) and the rest are the relevant items. The given items
    reach the model in the order the user interacted with them (by timestamp, ties and
    data without timestamps in input order), so sequential models read a real history.

A model is anything with ``fit(train)`` and
``recommend(users, k, candidates=..., exclude_seen=True)`` (every
:class:`~recseek.models.base.Recommender`); models are given as factories (a callable
returning a fresh model) so that each fold trains its own.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
import scipy.sparse as sp

from ..data import Interactions
from ..errors import DataError, ParameterError
from ..metrics.ranking import hit_matrix, ndcg, recall_capped

__all__ = [
    "ColdItemSplit",
    "ColdStartReport",
    "cold_item_folds",
    "cold_items_split",
    "cold_users_split",
    "evaluate_cold_items",
    "evaluate_cold_users",
    "evaluate_review_releases",
    "new_release_split",
    "review_release_split",
    "review_texts",
]

ModelFactory = Callable[[], Any]


# ---------------------------------------------------------------- checks
def _check_data(data: Any, where: str) -> None:
    if not isinstance(data, Interactions):
        raise DataError(f"{where} expects Interactions, got {type(data).__name__}")
    if data.nnz == 0:
        raise DataError(f"{where}: the data has no interactions")


def _int(value: Any, name: str, where: str, lo: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < lo:
        raise ParameterError(f"{where}: {name} must be an integer >= {lo}, got {value!r}")
    return int(value)


def _ratio(value: Any, name: str, where: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0 < value < 1:
        raise ParameterError(f"{where}: {name} must be a number between 0 and 1, got {value!r}")
    return float(value)


def _seed(value: Any, where: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < 0:
        raise ParameterError(f"{where}: seed must be a non-negative integer, got {value!r}")
    return int(value)


# ---------------------------------------------------------------- splits
@dataclass(frozen=True)
class ColdItemSplit:
    """One cold-item split: ``train`` has no record of a ``cold`` item.

    ``cold_test`` holds every record of the cold items, ``warm_test`` the held-out
    records of warm items, ``test`` both. ``known`` (optional) holds records that are
    neither trained on nor targets but known at recommendation time (the introduction
    reviews of :func:`review_release_split`): they are left out of the rankings like
    seen items.
    """

    train: Interactions
    cold_test: Interactions
    warm_test: Interactions
    cold: np.ndarray
    known: Interactions | None = None

    @property
    def test(self) -> Interactions:
        return _union(self.cold_test, self.warm_test)


def _union(a: Interactions, b: Interactions) -> Interactions:
    m = sp.csr_array(a.matrix + b.matrix)
    return Interactions(m, a.users, a.items, item_data=a.item_data, user_data=a.user_data)


def cold_item_folds(data: Interactions, folds: int = 5, seed: int = 0, strata: int = 10) -> np.ndarray:
    """Fold (0 .. folds - 1) of every item, stratified by popularity (see the module docstring)."""
    where = "cold_item_folds"
    _check_data(data, where)
    folds = _int(folds, "folds", where, 2)
    strata = _int(strata, "strata", where, 1)
    seed = _seed(seed, where)
    if folds > data.n_items:
        raise ParameterError(f"{where}: folds={folds} is more than the {data.n_items} items")
    rng = np.random.default_rng(seed)
    counts = np.bincount(data.matrix.indices, minlength=data.n_items)
    # popularity order, ties in random order
    order = np.lexsort((rng.random(data.n_items), counts))
    stratum = (np.arange(data.n_items) * strata) // data.n_items
    out = np.empty(data.n_items, dtype=np.int64)
    # within each stratum deal items out over the folds in random order (offset per stratum)
    for s in range(strata):
        members = order[stratum == s]
        if not members.size:
            continue
        members = rng.permutation(members)
        out[members] = (np.arange(members.size) + int(rng.integers(folds))) % folds
    return out


def _holdout_per_user(data: Interactions, keep: np.ndarray, ratio: float, rng: np.random.Generator) -> np.ndarray:
    """Mask (nnz,) of a random ``floor(ratio * n)`` of each user's records among ``keep``."""
    u = data.user_index()
    key = rng.random(data.nnz)
    users = np.where(keep, u, -1)
    order = np.lexsort((key, users))
    counts = np.bincount(u[keep], minlength=data.n_users)
    first = np.searchsorted(users[order], np.arange(data.n_users))
    rank = np.empty(data.nnz, dtype=np.int64)
    rank[order] = np.arange(data.nnz) - np.where(users[order] >= 0, first[np.maximum(users[order], 0)], 0)
    n_out = np.floor(ratio * counts).astype(np.int64)
    return keep & (rank < n_out[np.maximum(u, 0)])


def _split_on_cold(data: Interactions, cold: np.ndarray, warm_test_ratio: float, seed: int) -> ColdItemSplit:
    on_cold = cold[data.matrix.indices]
    warm_out = (_holdout_per_user(data, ~on_cold, warm_test_ratio, np.random.default_rng(seed))
                if warm_test_ratio > 0 else np.zeros(data.nnz, dtype=bool))
    train = data.subset(~on_cold & ~warm_out)
    if train.nnz == 0:
        raise DataError("the cold-item split leaves no training interactions")
    return ColdItemSplit(train, data.subset(on_cold), data.subset(warm_out), cold)


def cold_items_split(data: Interactions, ratio: float = 0.2, seed: int = 0, strata: int = 10, fold: int = 0,
                     warm_test_ratio: float = 0.2) -> ColdItemSplit:
    """Fold ``fold`` of the popularity-stratified item folds (``round(1 / ratio)`` of
    them) as cold items; see the module docstring."""
    where = "cold_items"
    _check_data(data, where)
    ratio = _ratio(ratio, "ratio", where)
    folds = max(2, round(1 / ratio))
    fold = _int(fold, "fold", where, 0)
    if fold >= folds:
        raise ParameterError(f"{where}: fold must be below {folds} (1 / ratio), got {fold}")
    if not (warm_test_ratio == 0 or 0 < warm_test_ratio < 1):
        raise ParameterError(f"{where}: warm_test_ratio must be 0 or between 0 and 1, got {warm_test_ratio!r}")
    cold = cold_item_folds(data, folds, seed, strata) == fold
    return _split_on_cold(data, cold, float(warm_test_ratio), seed)


def cold_items_pair(data: Interactions, ratio: float = 0.2, seed: int = 0, strata: int = 10,
                    fold: int = 0) -> tuple[Interactions, Interactions]:
    """``(train, test)`` of the TOML ``[split] method = "cold_items"``: test = every record
    of the held-out items, train = every other record."""
    s = cold_items_split(data, ratio, seed, strata, fold, warm_test_ratio=0.0)
    return s.train, s.cold_test


def cold_items_folds_count(ratio: float) -> int:
    """How many item folds ``ratio`` makes (``round(1 / ratio)``, at least 2)."""
    return max(2, round(1 / _ratio(ratio, "ratio", "cold_items")))


def new_release_split(data: Interactions, ratio: float = 0.1, date_column: str | None = None,
                      warm_test_ratio: float = 0.2, seed: int = 0) -> ColdItemSplit:
    """The latest ``ratio`` of the items by release date as cold items.

    The date is ``item_data[date_column]`` (numbers or dates; missing dates count as
    old) or, by default, the item's first interaction timestamp. Ties are broken by
    item index.
    """
    where = "new_release_split"
    _check_data(data, where)
    ratio = _ratio(ratio, "ratio", where)
    if date_column is not None:
        if data.item_data is None or date_column not in data.item_data.columns:
            raise DataError(f"{where}: item_data has no column {date_column!r}")
        import pandas as pd

        col = data.item_data[date_column]
        if pd.api.types.is_numeric_dtype(col):
            release = pd.to_numeric(col, errors="coerce").to_numpy(dtype=np.float64, na_value=np.nan)
        else:
            release = pd.to_datetime(col, errors="coerce").astype("int64").to_numpy(dtype=np.float64)
            release[pd.to_datetime(col, errors="coerce").isna().to_numpy()] = np.nan
    else:
        if data.timestamps is None:
            raise DataError(f"{where}: the data has no timestamps; name an item_data date column with date_column")
        release = np.full(data.n_items, np.inf)
        np.minimum.at(release, data.matrix.indices, data.timestamps)
    release = np.where(np.isfinite(release), release, -np.inf)
    n_cold = max(1, int(round(ratio * data.n_items)))
    order = np.lexsort((np.arange(data.n_items), release))
    cold = np.zeros(data.n_items, dtype=bool)
    cold[order[-n_cold:]] = True
    return _split_on_cold(data, cold, float(warm_test_ratio), seed)


def review_texts(data: Interactions) -> np.ndarray:
    """One text per record (aligned with ``data.matrix.data``) from its review:
    ``meta["comments"]`` of :func:`recseek.data.readers.read_reviews`; word-id reviews
    (``12:7:40``) become words ``w12 w7 w40``."""
    comments = (data.meta or {}).get("comments")
    if comments is None:
        raise DataError("review_release_split: the data has no reviews (meta['comments'] of read_reviews)")
    comments = np.asarray(comments, dtype=object)
    if comments.shape[0] != data.nnz:
        raise DataError(f"review_release_split: {comments.shape[0]} reviews for {data.nnz} records")
    kind = (data.meta or {}).get("review_kind")
    if kind == "words":
        return np.array([" ".join("w" + w for w in str(c).split(":") if w) for c in comments], dtype=object)
    return np.array([str(c).replace(":", " ") for c in comments], dtype=object)


def _introductions(data: Interactions, rng: np.random.Generator) -> np.ndarray:
    """Mask (nnz,) of one record per item: the earliest (timestamps) or a random one."""
    items = data.matrix.indices
    key = rng.random(data.nnz)
    first = np.lexsort((key, data.timestamps, items)) if data.timestamps is not None else np.lexsort((key, items))
    starts = np.flatnonzero(np.r_[True, items[first][1:] != items[first][:-1]])
    out = np.zeros(data.nnz, dtype=bool)
    out[first[starts]] = True
    return out


def review_release_split(data: Interactions, ratio: float = 0.2, seed: int = 0, fold: int = 0, strata: int = 10,
                         warm_test_ratio: float = 0.2, texts: Sequence[str] | np.ndarray | None = None
                         ) -> ColdItemSplit:
    """Cold items whose only text is one review (see the module docstring).

    ``texts`` gives one text per record (aligned with ``data.matrix.data``); by default
    :func:`review_texts`. Fold ``fold`` of the ``round(1 / ratio)`` popularity-stratified
    item folds is cold. The returned ``train`` (and the test parts) carry
    ``item_data`` with one column ``text``: each item's introduction review. ``known``
    holds the cold items' introduction records.
    """
    import pandas as pd

    where = "review_release_split"
    _check_data(data, where)
    ratio = _ratio(ratio, "ratio", where)
    seed = _seed(seed, where)
    folds = max(2, round(1 / ratio))
    fold = _int(fold, "fold", where, 0)
    if fold >= folds:
        raise ParameterError(f"{where}: fold must be below {folds} (1 / ratio), got {fold}")
    if not 0 < warm_test_ratio < 1:
        raise ParameterError(f"{where}: warm_test_ratio must be between 0 and 1, got {warm_test_ratio!r}")
    per_record = review_texts(data) if texts is None else np.asarray(texts, dtype=object)
    if per_record.shape != (data.nnz,):
        raise DataError(f"{where}: texts must hold one text per record ({data.nnz}), got shape {per_record.shape}")
    rng = np.random.default_rng(seed)
    intro = _introductions(data, rng)
    item_text = np.full(data.n_items, "", dtype=object)
    item_text[data.matrix.indices[intro]] = per_record[intro]
    cold = cold_item_folds(data, folds, seed, strata) == fold
    on_cold = cold[data.matrix.indices]
    warm_out = _holdout_per_user(data, ~on_cold & ~intro, float(warm_test_ratio), rng)
    frame = pd.DataFrame({"text": item_text.astype(str)})
    keep_train = ~on_cold & ~warm_out
    if not keep_train.any():
        raise DataError(f"{where}: the split leaves no training interactions")

    def part(mask: np.ndarray) -> Interactions:
        return replace(data.subset(mask), item_data=frame)

    return ColdItemSplit(part(keep_train), part(on_cold & ~intro), part(warm_out), cold, known=part(on_cold & intro))


def cold_users_split(data: Interactions, ratio: float = 0.2, given: int = 5, seed: int = 0
                     ) -> tuple[Interactions, np.ndarray, Interactions, Interactions]:
    """``(train, cold_users, given, test)``: the cold users' records are out of ``train``;
    ``given`` holds ``given`` random records of each cold user (their fold-in input) and
    ``test`` the rest. Only users with more than ``given`` records can be cold."""
    where = "cold_users_split"
    _check_data(data, where)
    ratio = _ratio(ratio, "ratio", where)
    given = _int(given, "given", where, 1)
    rng = np.random.default_rng(_seed(seed, where))
    counts = np.diff(data.matrix.indptr)
    eligible = np.flatnonzero(counts > given)
    n_cold = int(round(ratio * data.n_users))
    if n_cold == 0 or not eligible.size:
        raise DataError(f"{where}: no user has more than given={given} records")
    cold_users = np.sort(rng.choice(eligible, size=min(n_cold, eligible.size), replace=False))
    is_cold = np.zeros(data.n_users, dtype=bool)
    is_cold[cold_users] = True
    on_cold = is_cold[data.user_index()]
    shown = _holdout_first_n(data, on_cold, given, rng)
    return data.subset(~on_cold), cold_users, data.subset(shown), data.subset(on_cold & ~shown)


def _holdout_first_n(data: Interactions, keep: np.ndarray, n: int, rng: np.random.Generator) -> np.ndarray:
    u = data.user_index()
    users = np.where(keep, u, -1)
    order = np.lexsort((rng.random(data.nnz), users))
    first = np.searchsorted(users[order], np.arange(data.n_users))
    rank = np.empty(data.nnz, dtype=np.int64)
    rank[order] = np.arange(data.nnz) - np.where(users[order] >= 0, first[np.maximum(users[order], 0)], 0)
    return keep & (rank < n)


# ---------------------------------------------------------------- scoring
def _list_metrics(ids: np.ndarray, relevant: sp.csr_array, k: int) -> tuple[np.ndarray, np.ndarray]:
    hits = hit_matrix(ids, relevant)
    n_rel = np.diff(relevant.indptr)
    lengths = (ids >= 0).sum(axis=1)
    return ndcg(hits.astype(np.float64), n_rel, lengths), recall_capped(hits, n_rel, k)


def _rows(m: Interactions, users: np.ndarray) -> sp.csr_array:
    return sp.csr_array(m.matrix[users])


def _histories(m: Interactions, users: np.ndarray) -> list[np.ndarray]:
    """Each user's items in the order of interaction: by timestamp, then input order
    (records without either stay in item order)."""
    indptr, indices = m.matrix.indptr, m.matrix.indices
    out = []
    for u in users:
        lo, hi = int(indptr[u]), int(indptr[u + 1])
        items = np.asarray(indices[lo:hi], dtype=np.int64)
        keys = [k[lo:hi] for k in (m.order, m.timestamps) if k is not None]  # last key sorts first
        out.append(items[np.lexsort(keys)] if keys else items)
    return out


@dataclass
class ColdStartReport:
    """Per-user values of every model over folds x seeds (concatenated in the same order).

    ``values[model][metric]`` is a float64 array with one entry per (fold, seed, user)
    unit; all models share the units of a metric, so :meth:`compare` is paired.
    ``seconds[model]`` is the total fit + recommendation time.
    """

    k: int
    values: dict[str, dict[str, np.ndarray]] = field(default_factory=dict)
    seconds: dict[str, float] = field(default_factory=dict)
    units: int = 0

    def add(self, model: str, metric: str, v: np.ndarray) -> None:
        per = self.values.setdefault(model, {})
        per[metric] = np.concatenate([per[metric], v]) if metric in per else np.asarray(v, dtype=np.float64)

    def mean(self, model: str, metric: str) -> float:
        return float(np.mean(self.values[model][metric]))

    def metrics(self) -> list[str]:
        first = next(iter(self.values.values()), {})
        return list(first)

    def table(self) -> list[dict[str, Any]]:
        """One row per model: the mean of every metric and the time taken."""
        return [{"model": m, **{x: float(np.mean(v)) for x, v in per.items()}, "seconds": self.seconds.get(m, 0.0)}
                for m, per in self.values.items()]

    def compare(self, model: str, baseline: str, metric: str, n_permutations: int = 20_000,
                seed: int = 0) -> tuple[float, float]:
        """``(mean difference model - baseline, two-sided paired permutation p-value)``."""
        from .stats import permutation_test

        x, y = self.values[baseline][metric], self.values[model][metric]
        return float(np.mean(y - x)), permutation_test(x, y, n_permutations=n_permutations, seed=seed)


def _as_factories(models: Mapping[str, Any]) -> dict[str, ModelFactory]:
    from ..models import registry

    out: dict[str, ModelFactory] = {}
    for label, spec in models.items():
        if callable(spec) and not isinstance(spec, tuple):
            out[label] = spec
        elif isinstance(spec, tuple) and len(spec) == 2 and isinstance(spec[0], str):
            name, params = spec
            out[label] = lambda name=name, params=dict(params): registry.create(name, **params)
        elif isinstance(spec, str):
            out[label] = lambda name=spec: registry.create(name)
        else:
            raise ParameterError(f"model {label!r}: give a factory, a registry name or (name, params)")
    if not out:
        raise ParameterError("no models to evaluate")
    return out


def evaluate_split(models: Mapping[str, Any], split: ColdItemSplit, k: int = 10,
                   report: ColdStartReport | None = None) -> ColdStartReport:
    """Score every model on one :class:`ColdItemSplit` (cold, mixed, warm, exposure)."""
    import time

    report = ColdStartReport(k) if report is None else report
    factories = _as_factories(models)
    cold_items = np.flatnonzero(split.cold)
    test = split.test
    cold_users = np.flatnonzero(np.diff(split.cold_test.matrix.indptr) > 0)
    mixed_users = np.flatnonzero(np.diff(test.matrix.indptr) > 0)
    warm_rel = _rows(split.warm_test, mixed_users)
    has_warm = np.diff(warm_rel.indptr) > 0
    extra_cold = extra_mixed = None
    if split.known is not None and split.known.nnz:
        extra_cold, extra_mixed = _rows(split.known, cold_users), _rows(split.known, mixed_users)
    for label, make in factories.items():
        t0 = time.perf_counter()
        model = make()
        model.fit(split.train)
        cold_list = model.recommend(cold_users, k, candidates=cold_items, exclude=extra_cold).ids
        mixed_list = model.recommend(mixed_users, k, exclude=extra_mixed).ids
        report.seconds[label] = report.seconds.get(label, 0.0) + time.perf_counter() - t0
        n, r = _list_metrics(cold_list, _rows(split.cold_test, cold_users), k)
        report.add(label, f"cold_ndcg@{k}", n)
        report.add(label, f"cold_recall@{k}", r)
        n, _ = _list_metrics(mixed_list, _rows(test, mixed_users), k)
        report.add(label, f"mixed_ndcg@{k}", n)
        n, _ = _list_metrics(mixed_list, warm_rel, k)
        report.add(label, f"warm_ndcg@{k}", n[has_warm])
        exposure = (np.isin(mixed_list, cold_items) & (mixed_list >= 0)).sum(axis=1) / float(k)
        report.add(label, f"cold_exposure@{k}", exposure)
    report.units += 1
    return report


def evaluate_cold_items(models: Mapping[str, Any], data: Interactions, *, folds: int = 5,
                        seeds: Iterable[int] = (0,), k: int = 10, strata: int = 10,
                        warm_test_ratio: float = 0.2, progress: bool = False) -> ColdStartReport:
    """The cold-item protocol over every fold x seed (see the module docstring).

    ``models`` maps labels to factories (callables returning a new model), registry
    names, or ``(name, params)`` pairs.
    """
    k = _int(k, "k", "evaluate_cold_items", 1)
    seeds = list(seeds)
    folds = _int(folds, "folds", "evaluate_cold_items", 2)
    report = ColdStartReport(k)
    todo = [(s, f) for s in seeds for f in range(folds)]
    if progress:
        from tqdm.auto import tqdm

        todo = tqdm(todo, desc="cold-item folds", leave=False)
    for seed, f in todo:
        assignment = cold_item_folds(data, folds, seed, strata)
        split = _split_on_cold(data, assignment == f, warm_test_ratio, seed)
        evaluate_split(models, split, k, report)
    return report


def evaluate_review_releases(models: Mapping[str, Any], data: Interactions, *, folds: int = 5,
                             seeds: Iterable[int] = (0,), k: int = 10, strata: int = 10,
                             warm_test_ratio: float = 0.2) -> ColdStartReport:
    """The review-only cold-item protocol (:func:`review_release_split`) over every
    fold x seed, scored as :func:`evaluate_cold_items`."""
    k = _int(k, "k", "evaluate_review_releases", 1)
    folds = _int(folds, "folds", "evaluate_review_releases", 2)
    report = ColdStartReport(k)
    for seed in seeds:
        for f in range(folds):
            split = review_release_split(data, 1.0 / folds, seed, f, strata, warm_test_ratio)
            evaluate_split(models, split, k, report)
    return report


def evaluate_cold_users(models: Mapping[str, Any], data: Interactions, *, ratio: float = 0.2,
                        given: Sequence[int] = (1, 5, 10), seeds: Iterable[int] = (0,), k: int = 10
                        ) -> ColdStartReport:
    """Cold users given N: per ``n`` in ``given`` and seed, ``ndcg@k`` / ``recall@k`` of
    ``recommend_new`` from ``n`` of each cold user's records (metric names carry ``n``)."""
    k = _int(k, "k", "evaluate_cold_users", 1)
    factories = _as_factories(models)
    report = ColdStartReport(k)
    for seed in seeds:
        for n in given:
            train, users, shown, test = cold_users_split(data, ratio, n, seed)
            items = _histories(shown, users)
            rel = _rows(test, users)
            for label, make in factories.items():
                model = make()
                model.fit(train)
                ids = model.recommend_new(items, k=k).ids
                nd, rc = _list_metrics(ids, rel, k)
                report.add(label, f"given{n}_ndcg@{k}", nd)
                report.add(label, f"given{n}_recall@{k}", rc)
            report.units += 1
    return report
