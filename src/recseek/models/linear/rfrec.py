"""RF-Rec: predictions from the frequencies of rating values."""

from __future__ import annotations

from typing import ClassVar

import numpy as np
import scipy.sparse as sp

from ...data import Interactions
from .._params import Float
from ..base import Array, RatingPredictor, StateSpec
from ..registry import register


def _frequency_estimates(levels: np.ndarray, level_idx: np.ndarray, owner: np.ndarray, n: int,
                         values: np.ndarray, fallback: float) -> np.ndarray:
    """Per owner (user or item): the mean rating value with each level weighted by
    ``count + 1 + [level closest to the owner's mean]``; owners without ratings get
    ``fallback``."""
    counts = np.zeros((n, len(levels)))
    np.add.at(counts, (owner, level_idx), 1.0)
    total = counts.sum(axis=1)
    means = np.bincount(owner, weights=values, minlength=n) / np.maximum(total, 1)
    nearest = np.abs(means[:, None] - levels[None, :]).argmin(axis=1)
    weights = counts + 1.0
    weights[np.arange(n), nearest] += 1.0
    est = (weights * levels[None, :]).sum(axis=1) / weights.sum(axis=1)
    return np.where(total > 0, est, fallback)


@register
class RFRec(RatingPredictor):
    """RF-Rec: rating-frequency recommender with learned user and item weights.

    For every user and item, a frequency estimate ``E = sum_v F(v) v / sum_v F(v)`` with
    ``F(v) = count(v) + 1 + [v is the level closest to the mean]`` over the rating levels
    ``v``; the prediction is ``w_u E_u + w_i E_i``. The weights (initialised 0.6 / 0.4)
    are fitted by ``epochs`` rounds of alternating ridge regressions (``reg_user``,
    ``reg_item``, shrinking towards the initial weights).

    Gedikli, Bagdat, Ge, Jannach. RF-Rec: fast and accurate computation of
    recommendations based on rating frequencies. IEEE CEC 2011.
    """

    name = "RFRec"
    family = "linear"
    paper = ("Gedikli, Bagdat, Ge, Jannach. RF-Rec: fast and accurate computation of recommendations "
             "based on rating frequencies. IEEE CEC 2011")
    rules = {"reg_user": Float(lo=0.0), "reg_item": Float(lo=0.0)}
    test_params = {"epochs": 3}
    state: ClassVar[dict[str, StateSpec]] = {
        "levels_": Array("float32", ("n_levels",)),
        "user_estimate_": Array("float32", ("n_users",)),
        "item_estimate_": Array("float32", ("n_items",)),
        "user_weight_": Array("float32", ("n_users",)),
        "item_weight_": Array("float32", ("n_items",)),
    }

    def __init__(self, epochs: int = 10, reg_user: float = 10.0, reg_item: float = 10.0) -> None:
        self.epochs = epochs
        self.reg_user = reg_user
        self.reg_item = reg_item

    def _fit(self, train: Interactions) -> None:
        m = sp.csr_array(train.matrix)
        r = m.data.astype(np.float64)
        u = train.user_index()
        i = m.indices.astype(np.int64)
        levels, level_idx = np.unique(r, return_inverse=True)
        self.levels_ = levels.astype(np.float32)
        eu = _frequency_estimates(levels, level_idx, u, train.n_users, r, self.global_mean_)
        ei = _frequency_estimates(levels, level_idx, i, train.n_items, r, self.global_mean_)
        wu = np.full(train.n_users, 0.6)
        wi = np.full(train.n_items, 0.4)
        for epoch in range(self.epochs):
            # w_u = argmin sum_i (r - w_i E_i - w_u E_u)^2 + reg (w_u - 0.6)^2, then the same for items
            resid = r - wi[i] * ei[i]
            num = np.bincount(u, weights=resid * eu[u], minlength=train.n_users) + self.reg_user * 0.6
            den = np.bincount(u, weights=eu[u] ** 2, minlength=train.n_users) + self.reg_user
            wu = np.divide(num, den, out=np.full(train.n_users, 0.6), where=den > 0)
            resid = r - wu[u] * eu[u]
            num = np.bincount(i, weights=resid * ei[i], minlength=train.n_items) + self.reg_item * 0.4
            den = np.bincount(i, weights=ei[i] ** 2, minlength=train.n_items) + self.reg_item
            wi = np.divide(num, den, out=np.full(train.n_items, 0.4), where=den > 0)
            self._check_finite(epoch + 1, wu, wi)
        self.user_estimate_ = eu.astype(np.float32)
        self.item_estimate_ = ei.astype(np.float32)
        self.user_weight_ = wu.astype(np.float32)
        self.item_weight_ = wi.astype(np.float32)

    def _score(self, users: np.ndarray, items: np.ndarray | None) -> np.ndarray:
        cols = np.arange(self.n_items_) if items is None else items
        user_part = (self.user_weight_[users] * self.user_estimate_[users])[:, None]
        return user_part + (self.item_weight_[cols] * self.item_estimate_[cols])[None, :]

    def _predict(self, users: np.ndarray, items: np.ndarray) -> np.ndarray:
        return (self.user_weight_[users] * self.user_estimate_[users]
                + self.item_weight_[items] * self.item_estimate_[items]).astype(np.float32)

    def _fallback(self, users: np.ndarray, items: np.ndarray) -> np.ndarray:
        out = np.full(len(users), self.global_mean_, dtype=np.float32)
        uk = (users >= 0) & (users < self.n_users_)
        ik = (items >= 0) & (items < self.n_items_)
        out[uk & ~ik] = self.user_estimate_[users[uk & ~ik]]
        out[ik & ~uk] = self.item_estimate_[items[ik & ~uk]]
        return out

    def _score_new(self, rows: sp.csr_array) -> np.ndarray:
        rows = sp.csr_array(rows)
        n = rows.shape[0]
        owner = np.repeat(np.arange(n), np.diff(rows.indptr))
        levels = self.levels_.astype(np.float64)
        idx = np.abs(rows.data[:, None] - levels[None, :]).argmin(axis=1)
        eu = _frequency_estimates(levels, idx, owner, n, rows.data.astype(np.float64), self.global_mean_)
        # the user weight of a new user: ridge fit on its own ratings with the item weights fixed
        resid = rows.data - self.item_weight_[rows.indices] * self.item_estimate_[rows.indices]
        num = np.bincount(owner, weights=resid * eu[owner], minlength=n) + self.reg_user * 0.6
        den = np.bincount(owner, weights=eu[owner] ** 2, minlength=n) + self.reg_user
        wu = num / den
        return ((wu * eu)[:, None] + (self.item_weight_ * self.item_estimate_)[None, :]).astype(np.float32)
