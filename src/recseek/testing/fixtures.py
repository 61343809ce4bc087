"""Small data sets for tests: synthetic interactions and a real MovieLens sample."""

from __future__ import annotations

import os
from functools import lru_cache
from pathlib import Path

import numpy as np

from ..data import Interactions


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
    """The shared test data folder (``RECSEEK_TEST_DATA`` or ``../shared/data``), if present."""
    env = os.environ.get("RECSEEK_TEST_DATA")
    candidates = [Path(env)] if env else []
    here = Path(__file__).resolve()
    candidates += [p / "shared" / "data" for p in here.parents]
    candidates += [Path.cwd().parent / "shared" / "data"]
    for c in candidates:
        if (c / "ml-100k" / "ml-100k.inter").exists():
            return c
    return None


@lru_cache(maxsize=4)
def ml100k_sample(n_users: int = 300, min_rating: float | None = None) -> Interactions:
    """The ratings of the first ``n_users`` users (by id) of MovieLens-100K.

    Raises ``FileNotFoundError`` when the shared data folder is missing.
    """
    import pandas as pd

    root = shared_data_dir()
    if root is None:
        raise FileNotFoundError("MovieLens-100K test data not found (set RECSEEK_TEST_DATA)")
    df = pd.read_csv(root / "ml-100k" / "ml-100k.inter", sep="\t")
    df.columns = ["user", "item", "rating", "timestamp"]
    df = df[df.user <= n_users]
    if min_rating is not None:
        df = df[df.rating >= min_rating]
    return Interactions.from_arrays(df.user.values, df.item.values, df.rating.values, df.timestamp.values)


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
