"""A hidden Markov model of each user's consumption over time periods (HMM), fitted by EM
(Baum-Welch)."""

from __future__ import annotations

from typing import ClassVar

import numpy as np
import scipy.sparse as sp

from ...data._interactions import Interactions
from ...errors import DataError
from .._params import Float, Int
from ..base import Array, Recommender, StateSpec
from ..registry import register
from ._a_base import EpochBar


def _log_nb(n: np.ndarray, shape: np.ndarray, rate: np.ndarray) -> np.ndarray:
    """Log negative-binomial (Gamma(shape, rate)-Poisson) probability of counts ``n``
    (column) under each state's (shape, rate) (row)."""
    from scipy.special import gammaln

    n = n[:, None]
    return (gammaln(n + shape) - gammaln(shape) - gammaln(n + 1.0) + shape * np.log(rate / (1.0 + rate))
            - n * np.log1p(rate))


def _nb_mstep(n: np.ndarray, w: np.ndarray, shape: np.ndarray, steps: int = 20) -> tuple[np.ndarray, np.ndarray]:
    """Weighted maximum-likelihood negative binomial per state: Newton steps on the shape
    with the rate at its optimum ``shape / weighted mean``. ``n`` (P,), ``w`` (P, S)."""
    from scipy.special import digamma, polygamma

    # periods with the same count share their terms: sum their weights first
    n, inverse = np.unique(n, return_inverse=True)
    w = np.stack([np.bincount(inverse.ravel(), weights=w[:, z], minlength=len(n)) for z in range(w.shape[1])], axis=1)
    tot = w.sum(axis=0)
    mean = np.maximum((w * n[:, None]).sum(axis=0) / np.maximum(tot, 1e-300), 1e-6)
    a = shape.copy()
    for _ in range(steps):
        g = (w * (digamma(n[:, None] + a) - digamma(a))).sum(axis=0) + tot * np.log(a / (a + mean))
        h = (w * (polygamma(1, n[:, None] + a) - polygamma(1, a))).sum(axis=0) + tot * mean / (a * (a + mean))
        step = np.where(h < 0, g / h, -g)
        a = np.clip(a - step, 1e-3, 1e4)
    return a, a / mean


@register
class HMM(Recommender):
    """A hidden Markov model for collaborative filtering over time-ordered consumption.

    Each user's records are grouped into time periods of ``period_length`` time units
    (the data's time span in 10 periods by default; one period per user without
    timestamps). In every period t user u is in one of ``states`` hidden states, which
    follow a Markov chain (initial ``pi``, transitions ``A``). The period's observation
    is the number of items consumed, ``n_ut ~ NegBin(shape_z, rate_z)`` (a Gamma-Poisson),
    and the items, ``multinomial(n_ut, B_z)``. EM (Baum-Welch): scaled forward-backward per
    user gives the state posteriors; the M-step sets ``pi``, ``A`` and ``B`` to their
    posterior counts plus the Dirichlet pseudo-counts ``prior_initial``,
    ``prior_transition`` and ``prior_emission``, and each state's negative binomial to
    its weighted maximum-likelihood fit. A user's next-period state distribution is
    ``P(z_T | history) A``; items are ranked by their expected count in that period,
    ``sum_z P(z_(T+1) = z) (shape_z / rate_z) B_z,i``. The progress bar shows the
    log-likelihood.

    Parameters
    ----------
    states : int
        Number of hidden states (JStarCraft ``recommender.hmm.state.number``).
    epochs : int
        EM iterations (``recommender.iterator.maximum``).
    prior_initial, prior_transition, prior_emission : float
        Dirichlet pseudo-counts of each initial, transition and item-emission
        probability (JStarCraft's ``recommender.probability.regularization``,
        ``recommender.state.regularization`` and ``recommender.view.regularization`` are
        the totals: ``states`` x ``prior_initial``, and so on).
    period_length : float or None
        Length of a time period in timestamp units (None: a tenth of the time span).
    seed : int or None
        Seed of the random initial ``pi`` and ``A``.
    verbose : bool
        Progress bar with the log-likelihood per iteration.

    Learned state: ``initial_`` (S,), ``transition_`` (S, S), ``item_emission_``
    (n_items, S) ``B`` transposed, ``nb_shape_``, ``nb_rate_`` (S,), ``user_state_``
    (n_users, S) each user's next-period state distribution, ``loglik_`` (epochs,).
    New users are folded in as one period of observations.

    Reference: Sahoo, Singh, Mukhopadhyay, "A Hidden Markov Model for Collaborative
    Filtering", MIS Quarterly 36(4), 2012.
    """

    name = "HMM"
    family = "probabilistic"
    task = "ranking"
    paper = ("Sahoo, Singh, Mukhopadhyay. A Hidden Markov Model for Collaborative Filtering. "
             "MIS Quarterly 36(4):1329-1356, 2012")
    rules = {"states": Int(lo=1), "epochs": Int(lo=1), "prior_initial": Float(lo=0.0),
             "prior_transition": Float(lo=0.0), "prior_emission": Float(lo=0.0, lo_open=True),
             "period_length": Float(lo=0.0, lo_open=True, none_ok=True)}
    test_params = {"states": 5, "epochs": 15}
    state: ClassVar[dict[str, StateSpec]] = {
        "initial_": Array("float32", ("states",)),
        "transition_": Array("float32", ("states", "states")),
        "item_emission_": Array("float32", ("n_items", "states")),
        "nb_shape_": Array("float32", ("states",)),
        "nb_rate_": Array("float32", ("states",)),
        "user_state_": Array("float32", ("n_users", "states")),
        "loglik_": Array("float64", ("epochs",), finite=False, history=True),
    }

    def __init__(self, states: int = 20, epochs: int = 10, prior_initial: float = 1.0,
                 prior_transition: float = 1.0, prior_emission: float = 0.01, period_length: float | None = None,
                 seed: int | None = 0, verbose: bool = False) -> None:
        self.states = states
        self.epochs = epochs
        self.prior_initial = prior_initial
        self.prior_transition = prior_transition
        self.prior_emission = prior_emission
        self.period_length = period_length
        self.seed = seed
        self.verbose = verbose

    # ------------------------------------------------------------ data
    def _periods(self, train: Interactions) -> tuple[np.ndarray, sp.csr_array]:
        """``(user_ptr, counts)``: each user's periods in time order, and the (n_periods x
        n_items) item counts of every period."""
        m = train.matrix
        rows = np.repeat(np.arange(train.n_users, dtype=np.int64), np.diff(m.indptr))
        items = np.asarray(m.indices, dtype=np.int64)
        values = np.ones(len(items))
        if train.timestamps is None:
            slot = np.zeros(len(items), dtype=np.int64)
        else:
            t = np.asarray(train.timestamps, dtype=np.float64)
            span = float(t.max() - t.min())
            length = float(self.period_length) if self.period_length is not None else max(span / 10.0, 1e-12)
            slot = np.floor((t - t.min()) / length).astype(np.int64)
        keys, period = np.unique(np.stack([rows, slot]), axis=1, return_inverse=True)
        period = period.ravel()
        user_ptr = np.zeros(train.n_users + 1, dtype=np.int64)
        np.cumsum(np.bincount(keys[0], minlength=train.n_users), out=user_ptr[1:])
        counts = sp.csr_array((values, (period, items)), shape=(keys.shape[1], train.n_items))
        counts.sum_duplicates()
        return user_ptr, counts

    def _log_emission(self, counts: sp.csr_array, log_b: np.ndarray, shape: np.ndarray,
                      rate: np.ndarray) -> np.ndarray:
        from scipy.special import gammaln

        n = np.asarray(counts.sum(axis=1)).ravel()
        coef = gammaln(n + 1.0) - np.bincount(np.repeat(np.arange(counts.shape[0]), np.diff(counts.indptr)),
                                              weights=gammaln(counts.data + 1.0), minlength=counts.shape[0])
        values, inverse = np.unique(n, return_inverse=True)
        return np.asarray(counts @ log_b) + coef[:, None] + _log_nb(values, shape, rate)[inverse.ravel()]

    # ------------------------------------------------------------ training
    def _fit(self, train: Interactions) -> None:
        from ._a_hmm import forward_backward
        from ._topic_kernels import chunk_bounds

        s = int(self.states)
        rng = np.random.default_rng(self.seed)
        user_ptr, counts = self._periods(train)
        n = np.asarray(counts.sum(axis=1)).ravel()
        first = user_ptr[:-1][np.diff(user_ptr) > 0]
        chunks = chunk_bounds(user_ptr, 5_000)
        pi = rng.random(s) + 0.5
        pi /= pi.sum()
        a = rng.random((s, s)) + 0.5
        a /= a.sum(axis=1, keepdims=True)
        # emissions start at the overall item frequencies, perturbed per state
        freq = np.asarray(counts.sum(axis=0)).ravel() + float(self.prior_emission)
        b = freq[:, None] * (1.0 + 0.5 * rng.random((train.n_items, s)))
        b /= b.sum(axis=0, keepdims=True)
        mean_n = max(float(n.mean()), 1e-6)
        shape = np.ones(s)
        rate = shape / mean_n
        self.loglik_ = np.zeros(int(self.epochs), dtype=np.float64)
        bar = EpochBar(self, int(self.epochs), "log-likelihood")
        gamma = np.zeros((counts.shape[0], s))
        for epoch in bar:
            log_emit = self._log_emission(counts, np.log(b), shape, rate)
            gamma, xi, ll = forward_backward(user_ptr, np.ascontiguousarray(log_emit), np.log(pi), np.log(a), chunks)
            self.loglik_[epoch] = ll.sum()
            pi = gamma[first].sum(axis=0) + float(self.prior_initial)
            pi /= pi.sum()
            a = xi.sum(axis=0) + float(self.prior_transition)
            a /= np.maximum(a.sum(axis=1, keepdims=True), 1e-300)
            b = np.asarray(counts.T @ gamma) + float(self.prior_emission)
            b /= b.sum(axis=0, keepdims=True)
            shape, rate = _nb_mstep(n, gamma, shape)
            self._check_finite(epoch, pi, a, b, shape, rate, np.asarray(ll.sum()))
            bar.report(self.loglik_[epoch])
        # each user's state distribution in the period after their last one
        last = np.full((train.n_users, s), 0.0)
        has = np.diff(user_ptr) > 0
        log_emit = self._log_emission(counts, np.log(b), shape, rate)
        gamma, _, _ = forward_backward(user_ptr, np.ascontiguousarray(log_emit), np.log(pi), np.log(a), chunks)
        last[has] = gamma[user_ptr[1:][has] - 1]
        last[~has] = pi
        self.user_state_ = (last @ a).astype(np.float32)
        self.initial_ = pi.astype(np.float32)
        self.transition_ = a.astype(np.float32)
        self.item_emission_ = b.astype(np.float32)
        self.nb_shape_ = shape.astype(np.float32)
        self.nb_rate_ = rate.astype(np.float32)

    # ------------------------------------------------------------ scoring
    def _item_rates(self) -> np.ndarray:
        mean = (self.nb_shape_.astype(np.float64) / self.nb_rate_)
        return self.item_emission_.astype(np.float64) * mean[None, :]

    def _score(self, users: np.ndarray, items: np.ndarray | None) -> np.ndarray:
        rates = self._item_rates()
        if items is not None:
            rates = rates[items]
        return (self.user_state_[users].astype(np.float64) @ rates.T).astype(np.float32)

    def item_vectors(self) -> np.ndarray:
        """Each item's distribution over the states that emit it (rows sum to one)."""
        self._check_fitted()
        m = self.item_emission_.astype(np.float64)
        s = m.sum(axis=1, keepdims=True)
        return (m / np.where(s > 0, s, 1.0)).astype(np.float32)

    def fold_in(self, rows: sp.csr_array) -> np.ndarray:
        """Next-period state distributions (n_new, S) of new users, each row one period."""
        rows = sp.csr_array(rows)
        if rows.shape[1] != self.n_items_:
            raise DataError(f"{self.display_name}: fold-in rows have {rows.shape[1]} items, expected {self.n_items_}")
        rows.sum_duplicates()
        counts = sp.csr_array((np.ones(rows.nnz), rows.indices, rows.indptr), shape=rows.shape)
        log_emit = self._log_emission(counts, np.log(self.item_emission_.astype(np.float64)),
                                      self.nb_shape_.astype(np.float64), self.nb_rate_.astype(np.float64))
        post = log_emit + np.log(self.initial_.astype(np.float64))[None, :]
        post -= post.max(axis=1, keepdims=True)
        post = np.exp(post)
        post /= post.sum(axis=1, keepdims=True)
        return (post @ self.transition_.astype(np.float64)).astype(np.float32)

    def _score_new(self, rows: sp.csr_array) -> np.ndarray:
        return (self.fold_in(rows).astype(np.float64) @ self._item_rates().T).astype(np.float32)
