"""Shared machinery of the Gibbs-sampled mixture models BUCM, URP, LDCC and BHFree.

Each of these models ends up, after sampling, as a mixture over ``T`` user-side latent
components: a user's weights ``user_topics_[u]`` (n_users, T) and a table
``item_levels_[k, i, r]`` (T, n_items, n_levels) giving, under component ``k``, the
probability of item ``i`` with rating level ``r`` (BUCM, BHFree: p(i, r | k)) or of level
``r`` given item ``i`` (URP, LDCC: p(r | k, i)). Then

- the rating prediction is ``E[r | u, i] = sum_r r p(i, r | u) / sum_r p(i, r | u)`` with
  ``p(i, r | u) = sum_k user_topics_[u, k] item_levels_[k, i, r]``;
- a ranking score is ``sum_r w_r p(i, r | u)`` with model-specific level weights;
- a new user is folded in by EM on the user's mixture with the item side fixed
  (:func:`~recseek.models.probabilistic._b_gibbs.mixture_fold_in`).

The samplers keep integer count tables; after ``burn_in`` sweeps, every ``sample_lag``-th
sweep the posterior means of the distributions are added to running sums, whose average
is the learned state (as in JStarCraft's ``ProbabilisticGraphicalModel``).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, ClassVar

import numpy as np
import scipy.sparse as sp

from ...data import Interactions
from ...errors import ParameterError, TrainingError
from .._params import Bool, Float, Int
from ..base import Array, RatingPredictor, Recommender, StateSpec

#: Ratings per chunk of a parallel Gibbs sweep; below this many ratings a sweep is one
#: chunk (exact collapsed Gibbs). The count is a function of the data only, never of the
#: thread count, so results do not depend on the machine.
RATINGS_PER_CHUNK = 200_000
#: Most chunks of a sweep.
MAX_CHUNKS = 64
#: Memory allowed for the chunks' private copies of the shared count tables.
CHUNK_COPY_BYTES = 1 << 30
#: EM iterations of the fold-in of a new user's mixture.
FOLD_IN_ITERATIONS = 50

GIBBS_RULES: dict[str, Any] = {
    "burn_in": Int(lo=0),
    "sample_lag": Int(lo=1),
    "learn_priors": Bool(),
}


def positive(none_ok: bool = False) -> Float:
    return Float(lo=0.0, lo_open=True, none_ok=none_ok)


def rating_levels(train: Interactions) -> tuple[np.ndarray, np.ndarray]:
    """``(levels, level_index)``: the distinct training values (float32, ascending) and
    each stored rating's index among them (int32, aligned with ``train.matrix.data``)."""
    data = np.asarray(train.matrix.data, dtype=np.float32)
    levels, idx = np.unique(data, return_inverse=True)
    return levels.astype(np.float32), idx.astype(np.int32)


def nearest_levels(levels: np.ndarray, values: np.ndarray) -> np.ndarray:
    """Index of the level nearest each value (int32)."""
    values = np.asarray(values, dtype=np.float32)
    if levels.shape[0] == 1:
        return np.zeros(values.shape[0], dtype=np.int32)
    mids = (levels[1:] + levels[:-1]) / 2
    return np.searchsorted(mids, values).astype(np.int32)


def user_chunks(indptr: np.ndarray, shared_entries: int = 0) -> np.ndarray:
    """Boundaries (int64, n_chunks + 1) of chunks of consecutive users with about equal ratings.

    ``shared_entries`` (the int32 entries of the tables every chunk copies) caps the chunk
    count so that the copies fit in :data:`CHUNK_COPY_BYTES`.
    """
    nnz = int(indptr[-1])
    cap = max(1, CHUNK_COPY_BYTES // max(1, 4 * int(shared_entries)))
    n_chunks = int(min(MAX_CHUNKS, cap, max(1, nnz // RATINGS_PER_CHUNK)))
    n_users = indptr.shape[0] - 1
    if n_chunks == 1:
        return np.array([0, n_users], dtype=np.int64)
    cuts = np.searchsorted(indptr, np.linspace(0, nnz, n_chunks + 1)[1:-1]).astype(np.int64)
    return np.unique(np.concatenate([[0], cuts, [n_users]])).astype(np.int64)


def sweep_seeds(seed: int | None, sweep: int, n_chunks: int) -> np.ndarray:
    from ..ranking._kernels import chunk_seeds

    return chunk_seeds(int(seed or 0), sweep, n_chunks)


def readout_sweeps(epochs: int, burn_in: int, sample_lag: int) -> set[int]:
    """The sweeps (1-based) after which the posterior means are collected: every
    ``sample_lag``-th sweep after ``burn_in``; the last sweep when that gives none."""
    picks = {s for s in range(burn_in + 1, epochs + 1) if (s - burn_in) % sample_lag == 0}
    return picks or {epochs}


def minka_update(prior: np.ndarray, counts: np.ndarray, totals: np.ndarray) -> np.ndarray:
    """One fixed-point step of Minka's (2000) estimate of a Dirichlet prior (his eq. 55).

    ``counts`` (n_groups, n_values) are the per-group counts drawn from the Dirichlet
    ``prior`` (n_values,), ``totals`` (n_groups,) their row sums. Returns the new prior
    (values without any count keep theirs; no value drops below 1e-6). Only non-zero
    counts contribute (``digamma(0 + a) - digamma(a) = 0``), so the step costs one pass
    over the counts.
    """
    from ._b_gibbs import minka_step

    c = np.ascontiguousarray(counts)
    return minka_step(np.asarray(prior, dtype=np.float64), c.reshape(c.shape[0], -1) if c.ndim == 2 else c,
                      np.ascontiguousarray(totals, dtype=np.float64).reshape(-1))


@contextmanager
def progress_bar(model: Recommender, total: int, unit: str = "sweep",
                 label: str = "loglik") -> Iterator[Callable[[float], None]]:
    """A per-iteration progress bar (when ``model.verbose``) showing a figure per iteration
    (by default the log-likelihood per rating of each Gibbs sweep)."""
    if not getattr(model, "verbose", False):
        yield lambda value: None
        return
    from tqdm.auto import tqdm

    bar = tqdm(total=total, desc=model.display_name, leave=False, unit=unit)

    def step(value: float) -> None:
        bar.set_postfix({label: f"{value:.4f}"})
        bar.update(1)

    try:
        yield step
    finally:
        bar.close()


def mixture_state(topics: str, item_topics: str) -> dict[str, StateSpec]:
    """The learned state of a mixture model whose user-side dimension is ``topics`` and whose
    item vectors (for ``similar_items``) have dimension ``item_topics``."""
    return {
        "levels_": Array("float32", ("n_levels",)),
        "user_topics_": Array("float32", ("n_users", topics)),
        "item_levels_": Array("float32", (topics, "n_items", "n_levels")),
        "item_topics_": Array("float32", ("n_items", item_topics)),
        "prior_": Array("float32", (topics,)),
        "log_likelihood_": Array("float64", ("n_sweeps",), finite=False, history=True),
    }


class MixtureCore:
    """Scoring, fold-in and similarity of a fitted mixture (see the module docstring).

    Subclasses fill ``levels_``, ``user_topics_``, ``item_levels_`` and ``item_topics_``
    and implement :meth:`_sample` (the Gibbs sampler) and :meth:`_fold_in_prior`.
    """

    # ------------------------------------------------------------ fitting helpers
    def _check_schedule(self) -> None:
        if int(self.burn_in) >= int(self.epochs):
            raise ParameterError(f"{self.display_name}: burn_in ({self.burn_in}) must be less than epochs "
                                 f"({self.epochs}), so that samples are collected after it")

    def _training_arrays(self, train: Interactions,
                         shared_per_item: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """CSR arrays, rating-level indices and sweep chunks; ``shared_per_item`` is the
        number of shared count-table entries per item and rating level (for the chunk cap)."""
        m = train.matrix
        levels, lev = rating_levels(train)
        self.levels_ = levels
        shared = shared_per_item * train.n_items * levels.shape[0]
        return (m.indptr.astype(np.int64), m.indices.astype(np.int64), lev, user_chunks(m.indptr, shared))

    def _check_sweep(self, sweep: int, ll: float, *arrays: np.ndarray) -> None:
        if not np.isfinite(ll):
            raise TrainingError(f"{self.display_name}: Gibbs sampling diverged at sweep {sweep} "
                                "(the log-likelihood is not finite); raise the Dirichlet priors")
        for a in arrays:
            if not np.all(np.isfinite(a)) or (a < 0).any():
                raise TrainingError(f"{self.display_name}: Gibbs sampling diverged at sweep {sweep} "
                                    "(negative or non-finite probabilities); raise the Dirichlet priors")

    # ------------------------------------------------------------ scoring
    def _joint(self, users: np.ndarray, items: np.ndarray | None, weights: np.ndarray) -> np.ndarray:
        """``sum_r weights[r] p(i, r | u)`` for the users and items (float64)."""
        lik = self.item_levels_ if items is None else self.item_levels_[:, items, :]
        table = np.einsum("kir,r->ki", lik.astype(np.float64), weights.astype(np.float64))
        return self.user_topics_[users].astype(np.float64) @ table

    def _expected_rating(self, theta: np.ndarray, items: np.ndarray | None) -> np.ndarray:
        lik = (self.item_levels_ if items is None else self.item_levels_[:, items, :]).astype(np.float64)
        num = theta.astype(np.float64) @ np.einsum("kir,r->ki", lik, self.levels_.astype(np.float64))
        den = theta.astype(np.float64) @ lik.sum(axis=2)
        with np.errstate(invalid="ignore", divide="ignore"):
            out = num / den
        return np.where(den > 0, out, np.nan).astype(np.float32)

    def _ranking_weights(self) -> np.ndarray:
        """Weight of each rating level in the ranking score (ranking models)."""
        return np.ones_like(self.levels_)

    # ------------------------------------------------------------ fold-in
    def fold_in(self, rows: sp.csr_array) -> np.ndarray:
        """The user-side mixture (n_new, T) of new users from their rating rows."""
        from ._b_gibbs import mixture_fold_in

        rows = sp.csr_array(rows)
        rows.sort_indices()
        lev = nearest_levels(self.levels_, rows.data)
        return mixture_fold_in(rows.indptr.astype(np.int64), rows.indices.astype(np.int64), lev,
                               np.ascontiguousarray(self.item_levels_, dtype=np.float64),
                               self.prior_.astype(np.float64), FOLD_IN_ITERATIONS)

    # ------------------------------------------------------------ vectors
    def item_vectors(self) -> np.ndarray:
        self._check_fitted()
        return self.item_topics_

    def user_vectors(self) -> np.ndarray:
        self._check_fitted()
        return self.user_topics_

    def _item_topics_from(self, joint_item: np.ndarray) -> np.ndarray:
        """Normalised rows of a (n_items, d) non-negative table (uniform where it is all zero)."""
        joint_item = np.asarray(joint_item, dtype=np.float64)
        s = joint_item.sum(axis=1, keepdims=True)
        d = joint_item.shape[1]
        return np.where(s > 0, joint_item / np.where(s > 0, s, 1.0), 1.0 / d).astype(np.float32)


class MixtureRanker(MixtureCore, Recommender):
    """A ranking model scoring ``sum_r w_r p(i, r | u)`` (see :class:`MixtureCore`)."""

    family: ClassVar[str] = "probabilistic"
    state: ClassVar[dict[str, StateSpec]] = {"level_weights_": Array("float32", ("n_levels",))}

    def _ranking_weights(self) -> np.ndarray:
        return self.level_weights_

    def _score(self, users: np.ndarray, items: np.ndarray | None) -> np.ndarray:
        return self._joint(users, items, self._ranking_weights()).astype(np.float32)

    def _score_new(self, rows: sp.csr_array) -> np.ndarray:
        theta = self.fold_in(rows).astype(np.float64)
        lik = self.item_levels_.astype(np.float64)
        table = np.einsum("kir,r->ki", lik, self._ranking_weights().astype(np.float64))
        return (theta @ table).astype(np.float32)


class MixtureRater(MixtureCore, RatingPredictor):
    """A rating model predicting ``E[r | u, i]`` (see :class:`MixtureCore`)."""

    family: ClassVar[str] = "probabilistic"

    def _score(self, users: np.ndarray, items: np.ndarray | None) -> np.ndarray:
        return self._expected_rating(self.user_topics_[users], items)

    def _predict(self, users: np.ndarray, items: np.ndarray) -> np.ndarray:
        theta = self.user_topics_[users].astype(np.float64)
        lik = self.item_levels_[:, items, :].astype(np.float64)  # (T, n, R)
        joint = np.einsum("nk,knr->nr", theta, lik)
        den = joint.sum(axis=1)
        num = joint @ self.levels_.astype(np.float64)
        with np.errstate(invalid="ignore", divide="ignore"):
            out = num / den
        return np.where(den > 0, out, np.nan).astype(np.float32)

    def _score_new(self, rows: sp.csr_array) -> np.ndarray:
        return np.clip(self._expected_rating(self.fold_in(rows), None), self.rating_min_, self.rating_max_)
