"""The evaluation protocol of the federated-recommendation literature, made exact.

FedCA (Zhang et al. 2024) and PFedRec (Zhang et al. 2023) evaluate by leave-one-out: each
user's latest interaction is the test item, the second-latest the validation item, the
rest is training data; every held-out item is ranked against 99 items the user never
interacted with, drawn once per user with a fixed seed, and HR@10 / NDCG@10 are read off
that list of 100. :func:`leave_one_out` builds that split (by time, or in random order),
with **separate** negatives for validation and test (the authors' code shares them;
``shared_negatives=True`` reproduces that), and :func:`evaluate` scores a model on it,
reporting the full-ranking figures (the held-out item against every item the user has not
interacted with in training) beside the sampled ones, labelled, because sampled metrics
can order models differently (Krichene & Rendle, "On Sampled Metrics for Item
Recommendation", KDD 2020).

Ties: the held-out item ranks after every negative with the same score (the authors' code
ranks the negatives first on ties, too), so a model that scores everything alike gets no
hits.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp

from ..data._interactions import Interactions
from ..errors import DataError, ParameterError

ORDERS = ("time", "item_first_seen", "file", "random")


@dataclass(frozen=True)
class LeaveOneOut:
    """A leave-one-out split with sampled negatives.

    Attributes
    ----------
    train : Interactions
        Binary training interactions (value 1.0), shape (n_users, n_items).
    valid_items, test_items : int64 arrays, shape (n_users,)
        The held-out item of each user.
    valid_negatives, test_negatives : int64 arrays, shape (n_users, n_negatives)
        Items the user never interacted with (in any part of the data), drawn without
        replacement; disjoint between validation and test unless the split was built
        with ``shared_negatives=True``.
    order : str
        What "latest" meant (see :func:`leave_one_out`).
    """

    train: Interactions
    valid_items: np.ndarray
    test_items: np.ndarray
    valid_negatives: np.ndarray
    test_negatives: np.ndarray
    order: str

    @property
    def n_users(self) -> int:
        return self.train.n_users

    @property
    def n_items(self) -> int:
        return self.train.n_items

    def held_out(self, part: str) -> tuple[np.ndarray, np.ndarray]:
        """``(items, negatives)`` of ``part`` ("valid" or "test")."""
        if part == "valid":
            return self.valid_items, self.valid_negatives
        if part == "test":
            return self.test_items, self.test_negatives
        raise ParameterError(f"part must be 'valid' or 'test', got {part!r}")


def leave_one_out(data: Interactions, *, order: str = "time", negatives: int = 99, seed: int = 0,
                  min_interactions: int = 10, shared_negatives: bool = False) -> LeaveOneOut:
    """Split ``data`` by leave-one-out and draw the evaluation negatives.

    Parameters
    ----------
    data : Interactions
        Any feedback; every stored entry with a value > 0 counts as an interaction.
    order : {"time", "item_first_seen", "file", "random"}
        How a user's interactions are ordered: by timestamp (ties by file order), by the
        position at which each item first appears in the file (what FedCA's code uses for
        FilmTrust, which has no timestamps: there one item is the test item of a third of
        the users), by file order, or at random (seeded).
    negatives : int
        Negatives per held-out item (99 in the literature).
    seed : int
        Seed of the negatives and of the random order.
    min_interactions : int
        Users with fewer interactions are dropped first (10 in FedCA's loader); users
        must keep at least 3 (one training, one validation, one test item).
    shared_negatives : bool
        Use the same negatives for validation and test (as the authors' code does).
    """
    if order not in ORDERS:
        raise ParameterError(f"order must be one of {', '.join(ORDERS)}, got {order!r}")
    if negatives < 1:
        raise ParameterError(f"negatives must be a positive integer, got {negatives!r}")
    u, i, v, t = data.to_coo()
    pos = np.arange(len(u)) if data.order is None else np.asarray(data.order, dtype=np.int64)
    keep = v > 0
    u, i, pos = u[keep], i[keep], pos[keep]
    t = None if t is None else t[keep]
    counts = np.bincount(u, minlength=data.n_users)
    ok_users = np.flatnonzero(counts >= max(3, int(min_interactions)))
    if len(ok_users) == 0:
        raise DataError(f"leave_one_out: no user has {max(3, int(min_interactions))} or more interactions")
    sel = np.isin(u, ok_users)
    u, i, pos = u[sel], i[sel], pos[sel]
    t = None if t is None else t[sel]
    # compact users and items (only those that remain), in their original index order
    uid = np.unique(u)
    iid = np.unique(i)
    cu = np.searchsorted(uid, u)
    ci = np.searchsorted(iid, i)
    n_users, n_items = len(uid), len(iid)
    rng = np.random.default_rng(seed)
    if order == "time":
        if t is None:
            raise DataError("leave_one_out: order='time' needs timestamps; these data have none "
                            "(use 'item_first_seen', 'file' or 'random')")
        key = (pos, t)
    elif order == "item_first_seen":
        first = np.full(n_items, np.iinfo(np.int64).max, dtype=np.int64)
        np.minimum.at(first, ci, pos)
        key = (pos, first[ci])
    elif order == "file":
        key = (pos,)
    else:
        key = (rng.random(len(cu)),)
    srt = np.lexsort((*key, cu))
    cu, ci = cu[srt], ci[srt]
    ends = np.cumsum(np.bincount(cu, minlength=n_users))
    test_idx = ends - 1
    valid_idx = ends - 2
    train_mask = np.ones(len(cu), dtype=bool)
    train_mask[test_idx] = False
    train_mask[valid_idx] = False
    tu, ti = cu[train_mask], ci[train_mask]
    train = Interactions.from_arrays(
        data.users.ids[uid][tu], data.items.ids[iid][ti], np.ones(len(tu), dtype=np.float32),
        user_vocab=_vocab(data.users.ids[uid], "user"), item_vocab=_vocab(data.items.ids[iid], "item"),
        source="leave_one_out",
    )
    full = sp.csr_array((np.ones(len(cu), dtype=np.float32), (cu, ci)), shape=(n_users, n_items))
    full.sum_duplicates()
    need = negatives if shared_negatives else 2 * negatives
    free = n_items - np.diff(full.indptr)
    if free.min() < need:
        raise DataError(f"leave_one_out: a user has only {int(free.min())} items never interacted with; "
                        f"{need} negatives are needed")
    neg = draw_negatives(full, need, rng)
    valid_neg = neg[:, :negatives]
    test_neg = valid_neg if shared_negatives else neg[:, negatives:]
    return LeaveOneOut(train, ci[valid_idx].astype(np.int64), ci[test_idx].astype(np.int64),
                       np.ascontiguousarray(valid_neg), np.ascontiguousarray(test_neg), order)


def _vocab(ids: np.ndarray, kind: str):
    from ..data._vocab import Vocabulary

    return Vocabulary(np.asarray(ids), kind)


def draw_negatives(interacted: sp.csr_array, n: int, rng: np.random.Generator) -> np.ndarray:
    """``n`` distinct items per user outside the user's row of ``interacted``, uniformly
    without replacement, shape (n_users, n); one vectorised draw (random keys, the items
    of the row pushed last, the ``n`` smallest keys kept)."""
    n_users, n_items = interacted.shape
    out = np.empty((n_users, n), dtype=np.int64)
    block = max(1, (32 << 20) // (8 * max(n_items, 1)))
    for s in range(0, n_users, block):
        rows = interacted[s: s + block].toarray() > 0
        keys = rng.random(rows.shape)
        keys[rows] = 2.0
        out[s: s + block] = np.argpartition(keys, n - 1, axis=1)[:, :n]
    return out


def sampled_ranks(pos_scores: np.ndarray, neg_scores: np.ndarray) -> np.ndarray:
    """1-based rank of each held-out item among itself and its negatives (ties: after them)."""
    pos = np.where(np.isnan(pos_scores), -np.inf, pos_scores)
    neg = np.where(np.isnan(neg_scores), -np.inf, neg_scores)
    return 1 + (neg >= pos[:, None]).sum(axis=1)


def hr_ndcg(ranks: np.ndarray, k: int = 10) -> tuple[float, float]:
    """HR@k and NDCG@k (one relevant item per user) from 1-based ranks."""
    hit = ranks <= k
    return float(hit.mean()), float(np.where(hit, 1.0 / np.log2(ranks + 1.0), 0.0).mean())


@dataclass(frozen=True)
class Figures:
    """Metrics of one model on one part of a :class:`LeaveOneOut` split."""

    hr: float
    ndcg: float
    full_hr: float
    full_ndcg: float
    k: int = 10

    def as_dict(self, prefix: str = "") -> dict[str, float]:
        k = self.k
        return {f"{prefix}HR@{k} (1+99 sampled)": self.hr, f"{prefix}NDCG@{k} (1+99 sampled)": self.ndcg,
                f"{prefix}HR@{k} (full ranking)": self.full_hr, f"{prefix}NDCG@{k} (full ranking)": self.full_ndcg}


def evaluate_scores(scores_of, split: LeaveOneOut, part: str = "test", k: int = 10,
                    block: int = 512) -> Figures:
    """Figures of a scorer on ``part`` of ``split``.

    ``scores_of(users)`` returns the scores of those users for every item, shape
    (len(users), n_items). Full ranking: the held-out item against every item outside the
    user's training row and other than the user's other held-out item.
    """
    items, negs = split.held_out(part)
    other = split.test_items if part == "valid" else split.valid_items
    seen = split.train.matrix
    n = split.n_users
    s_ranks = np.empty(n, dtype=np.int64)
    f_ranks = np.empty(n, dtype=np.int64)
    for s in range(0, n, block):
        users = np.arange(s, min(s + block, n))
        sc = np.asarray(scores_of(users), dtype=np.float64)
        sc = np.where(np.isnan(sc), -np.inf, sc)
        rows = np.arange(len(users))
        pos = sc[rows, items[users]]
        s_ranks[users] = sampled_ranks(pos, sc[rows[:, None], negs[users]])
        mask = seen[users].toarray() > 0
        mask[rows, other[users]] = True
        mask[rows, items[users]] = True
        beats = (sc >= pos[:, None]) & ~mask
        f_ranks[users] = 1 + beats.sum(axis=1)
    hr, ndcg = hr_ndcg(s_ranks, k)
    fhr, fndcg = hr_ndcg(f_ranks, k)
    return Figures(hr, ndcg, fhr, fndcg, k)


def evaluate(model, split: LeaveOneOut, part: str = "test", k: int = 10) -> Figures:
    """Figures of a fitted recseek model (trained on ``split.train``) on ``part``."""
    return evaluate_scores(lambda users: model.score(users), split, part, k)
