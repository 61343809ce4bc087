"""Fake models that the conformance suite must reject, and a way to register them briefly.

:class:`PopularityStub` ignores the user and returns item popularity; :class:`RandomStub`
returns seeded noise. Both honour the whole ``Recommender`` contract (shapes, unknown
ids, saving), so only the quality checks can tell them from a real model: the tests
assert that those checks fail on them. They are registered only inside
:func:`registered_stubs`, so ``recseek models`` and the registry never list them.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import numpy as np

from ..data import Interactions
from ..models import registry
from ..models.base import Recommender
from ..models.baseline.simple import hash_uniform


class PopularityStub(Recommender):
    """Test stub: every user gets the items ranked by training popularity."""

    name = "PopularityStub"
    family = "baseline"
    paper = "none (a fake model the conformance suite must reject)"

    def __init__(self) -> None:
        pass

    def _fit(self, train: Interactions) -> None:
        self.popularity_ = np.bincount(train.matrix.indices, minlength=train.n_items).astype(np.float32)

    def _score(self, users: np.ndarray, items: np.ndarray | None) -> np.ndarray:
        pop = self.popularity_ if items is None else self.popularity_[items]
        return np.broadcast_to(pop, (len(users), len(pop))).copy()


class RandomStub(Recommender):
    """Test stub: a seeded random score for every (user, item) pair."""

    name = "RandomStub"
    family = "baseline"
    paper = "none (a fake model the conformance suite must reject)"

    def __init__(self, seed: int = 0) -> None:
        self.seed = seed

    def _fit(self, train: Interactions) -> None:
        self.seed_ = int(self.seed)

    def _score(self, users: np.ndarray, items: np.ndarray | None) -> np.ndarray:
        cols = np.arange(self.n_items_) if items is None else items
        return hash_uniform(self.seed_, users[:, None], cols[None, :]).astype(np.float32)


STUBS: tuple[type[Recommender], ...] = (PopularityStub, RandomStub)


@contextmanager
def registered_stubs() -> Iterator[tuple[type[Recommender], ...]]:
    """Register :data:`STUBS` for the duration of a ``with`` block, then remove them."""
    registry.available()  # discover the real models first, so removal restores exactly them
    added = [cls for cls in STUBS if cls.name.lower() not in registry._MODELS]
    for cls in added:
        registry.register(cls)
    try:
        yield STUBS
    finally:
        for cls in added:
            registry._MODELS.pop(cls.name.lower(), None)
