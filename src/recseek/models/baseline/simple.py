"""The JStarCraft benchmark baselines: random, popularity, constants and averages."""

from __future__ import annotations

from typing import ClassVar

import numpy as np

from ...data import Interactions
from .._params import Float
from ..base import Array, RatingPredictor, Recommender, Scalar, StateSpec
from ..registry import register


def hash_uniform(seed: int, users: np.ndarray, items: np.ndarray) -> np.ndarray:
    """Deterministic uniform [0, 1) numbers for (user, item) pairs (splitmix64 hash).

    The same pair always gets the same number for a given seed, so a batch and
    one-by-one scoring agree.
    """
    with np.errstate(over="ignore"):
        x = (np.uint64(seed) * np.uint64(0x9E3779B97F4A7C15)
             + users.astype(np.uint64) * np.uint64(0xBF58476D1CE4E5B9)
             + items.astype(np.uint64) * np.uint64(0x94D049BB133111EB))
        x ^= x >> np.uint64(30)
        x *= np.uint64(0xBF58476D1CE4E5B9)
        x ^= x >> np.uint64(27)
        x *= np.uint64(0x94D049BB133111EB)
        x ^= x >> np.uint64(31)
    return (x >> np.uint64(11)).astype(np.float64) / float(1 << 53)


def _all_items(items: np.ndarray | None, n_items: int) -> np.ndarray:
    return np.arange(n_items, dtype=np.int64) if items is None else items


@register
class RandomGuess(RatingPredictor):
    """Random scores: uniform in the training rating range for every (user, item) pair.

    The floor every model must beat; ranks items in a random (seeded) order. On implicit
    feedback (every training value the same) the scores are uniform on [value, value + 1),
    so the order stays random rather than collapsing to ties; predictions are still
    clipped to the training range.
    """

    name = "RandomGuess"
    family = "baseline"
    paper = "JStarCraft RNS benchmark baseline"
    state: ClassVar[dict[str, StateSpec]] = {
        "seed_": Scalar(int),
    }

    def __init__(self, seed: int = 0) -> None:
        self.seed = seed

    def _fit(self, train: Interactions) -> None:
        self.seed_ = int(self.seed or 0)

    def _span(self) -> float:
        return (self.rating_max_ - self.rating_min_) or 1.0

    def _score(self, users: np.ndarray, items: np.ndarray | None) -> np.ndarray:
        cols = _all_items(items, self.n_items_)
        r = hash_uniform(self.seed_, users[:, None], cols[None, :])
        return (self.rating_min_ + r * self._span()).astype(np.float32)

    def _predict(self, users: np.ndarray, items: np.ndarray) -> np.ndarray:
        r = hash_uniform(self.seed_, users, items)
        return (self.rating_min_ + r * self._span()).astype(np.float32)


@register
class MostPopular(Recommender):
    """Items ranked by their number of training interactions, the same for every user.

    Unknown users get the same popularity ranking (it needs no user history).
    """

    name = "MostPopular"
    family = "baseline"
    paper = "JStarCraft RNS benchmark baseline (popularity)"
    state: ClassVar[dict[str, StateSpec]] = {
        "popularity_": Array("float32", ("n_items",)),
    }

    def __init__(self) -> None:
        pass

    def _fit(self, train: Interactions) -> None:
        self.popularity_ = np.bincount(train.matrix.indices, minlength=train.n_items).astype(np.float32)

    def _score(self, users: np.ndarray, items: np.ndarray | None) -> np.ndarray:
        pop = self.popularity_ if items is None else self.popularity_[items]
        return np.broadcast_to(pop, (len(users), len(pop))).copy()

    def score(self, users, items=None):  # noqa: D102 - popularity scores unknown users too
        self._check_fitted()
        users = np.atleast_1d(np.asarray(users, dtype=np.int64))
        if items is None:
            return self._score(users, None)
        items = np.atleast_1d(np.asarray(items, dtype=np.int64))
        ok = (items >= 0) & (items < self.n_items_)
        out = np.full((len(users), len(items)), np.nan, dtype=np.float32)
        out[:, ok] = self.popularity_[items[ok]]
        return out

    def _score_new(self, rows):
        return np.broadcast_to(self.popularity_, (rows.shape[0], self.n_items_)).copy()


@register
class ConstantGuess(RatingPredictor):
    """Predicts one constant rating (default: the middle of the training rating range)."""

    name = "ConstantGuess"
    family = "baseline"
    paper = "JStarCraft RNS benchmark baseline"
    rules = {"constant": Float(none_ok=True)}
    state: ClassVar[dict[str, StateSpec]] = {
        "constant_": Scalar(float),
    }

    def __init__(self, constant: float | None = None) -> None:
        self.constant = constant

    def _fit(self, train: Interactions) -> None:
        c = self.constant
        self.constant_ = float((self.rating_min_ + self.rating_max_) / 2 if c is None else c)

    def _score(self, users: np.ndarray, items: np.ndarray | None) -> np.ndarray:
        return np.full((len(users), len(_all_items(items, self.n_items_))), self.constant_, dtype=np.float32)

    def _predict(self, users: np.ndarray, items: np.ndarray) -> np.ndarray:
        return np.full(len(users), self.constant_, dtype=np.float32)

    def _fallback(self, users: np.ndarray, items: np.ndarray) -> np.ndarray:
        return np.full(len(users), self.constant_, dtype=np.float32)


@register
class GlobalAverage(RatingPredictor):
    """Predicts the mean training rating for every pair."""

    name = "GlobalAverage"
    family = "baseline"
    paper = "JStarCraft RNS benchmark baseline"

    def __init__(self) -> None:
        pass

    def _fit(self, train: Interactions) -> None:
        pass

    def _score(self, users: np.ndarray, items: np.ndarray | None) -> np.ndarray:
        return np.full((len(users), len(_all_items(items, self.n_items_))), self.global_mean_, dtype=np.float32)

    def _predict(self, users: np.ndarray, items: np.ndarray) -> np.ndarray:
        return np.full(len(users), self.global_mean_, dtype=np.float32)


def _row_means(matrix, fallback: float) -> np.ndarray:
    counts = np.diff(matrix.indptr)
    rows = np.repeat(np.arange(len(counts)), counts)
    sums = np.bincount(rows, weights=matrix.data.astype(np.float64), minlength=len(counts))
    return np.where(counts > 0, sums / np.maximum(counts, 1), fallback).astype(np.float32)


@register
class UserAverage(RatingPredictor):
    """Predicts the user's mean training rating (global mean for users without ratings)."""

    name = "UserAverage"
    family = "baseline"
    paper = "JStarCraft RNS benchmark baseline"
    state: ClassVar[dict[str, StateSpec]] = {
        "user_mean_": Array("float32", ("n_users",)),
    }

    def __init__(self) -> None:
        pass

    def _fit(self, train: Interactions) -> None:
        self.user_mean_ = _row_means(train.matrix, self.global_mean_)

    def _score(self, users: np.ndarray, items: np.ndarray | None) -> np.ndarray:
        n = len(_all_items(items, self.n_items_))
        return np.repeat(self.user_mean_[users, None], n, axis=1)

    def _predict(self, users: np.ndarray, items: np.ndarray) -> np.ndarray:
        return self.user_mean_[users]

    def _fallback(self, users: np.ndarray, items: np.ndarray) -> np.ndarray:
        ok = (users >= 0) & (users < self.n_users_)
        out = np.full(len(users), self.global_mean_, dtype=np.float32)
        out[ok] = self.user_mean_[users[ok]]
        return out


@register
class ItemAverage(RatingPredictor):
    """Predicts the item's mean training rating (global mean for items without ratings)."""

    name = "ItemAverage"
    family = "baseline"
    paper = "JStarCraft RNS benchmark baseline"
    state: ClassVar[dict[str, StateSpec]] = {
        "item_mean_": Array("float32", ("n_items",)),
    }

    def __init__(self) -> None:
        pass

    def _fit(self, train: Interactions) -> None:
        self.item_mean_ = _row_means(train.matrix.T.tocsr(), self.global_mean_)

    def _score(self, users: np.ndarray, items: np.ndarray | None) -> np.ndarray:
        row = self.item_mean_ if items is None else self.item_mean_[items]
        return np.broadcast_to(row, (len(users), len(row))).copy()

    def _predict(self, users: np.ndarray, items: np.ndarray) -> np.ndarray:
        return self.item_mean_[items]

    def _fallback(self, users: np.ndarray, items: np.ndarray) -> np.ndarray:
        ok = (items >= 0) & (items < self.n_items_)
        out = np.full(len(items), self.global_mean_, dtype=np.float32)
        out[ok] = self.item_mean_[items[ok]]
        return out

    def _score_new(self, rows):
        return np.broadcast_to(self.item_mean_, (rows.shape[0], self.n_items_)).copy()
