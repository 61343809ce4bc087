"""The bigram topic model over each user's time-ordered items (ItemBigram), fitted by
collapsed Gibbs sampling."""

from __future__ import annotations

from typing import ClassVar

import numpy as np
import scipy.sparse as sp

from ...data._interactions import Interactions
from .._params import Bool
from ..base import Array, Recommender, StateSpec
from ..registry import register
from ._a_base import GIBBS_CHUNK_TOKENS, TOPIC_RULES, EpochBar
from .lda import minka_update


def time_ordered(train: Interactions) -> tuple[np.ndarray, np.ndarray]:
    """``(indptr, items)``: each user's training items sorted by time (stable; by item
    index where the data has no timestamps)."""
    m = train.matrix
    indptr = np.asarray(m.indptr, dtype=np.int64)
    items = np.asarray(m.indices, dtype=np.int64)
    if train.timestamps is None:
        return indptr, items.copy()
    rows = np.repeat(np.arange(train.n_users, dtype=np.int64), np.diff(indptr))
    order = np.lexsort((np.arange(len(items)), np.asarray(train.timestamps, dtype=np.float64), rows))
    return indptr, items[order]


@register
class ItemBigram(Recommender):
    """The bigram topic model of Wallach (2006) over each user's items in time order.

    A user is a document whose words are the items in the order of consumption. Each
    user has a topic mixture ``theta_u ~ Dir(alpha)``; each (topic, previous item) has a
    distribution over the next item ``phi_(z,j) ~ Dir(beta)`` (the first item of a user
    follows a start symbol). Token ``t`` draws ``z_t ~ theta_u`` and its item
    ``i_t ~ phi_(z_t, i_(t-1))``. Collapsed Gibbs resamples every topic from
    ``p(z = k | rest) ~ (n_uk + alpha_k) (n_(k,j,i) + beta) / (n_(k,j) + n_items beta)``;
    with ``learn_priors`` alpha takes one step of Minka's update after each sweep. After
    ``burn_in`` sweeps every ``sample_lag``-th sweep adds ``theta`` and ``phi`` to a
    running mean (the last sweep's when none qualifies). A user's next item is scored by
    ``sum_k theta_uk phi_(k, last_u, i)``, ``last_u`` the user's last training item.
    Only the (previous, next) pairs seen in training are stored; every other pair has the
    smoothing probability ``beta / (n_(k,j) + n_items beta)``. Chunked, thread-independent
    sweeps as in :class:`~recseek.models.probabilistic.lda.LDA`.

    Parameters
    ----------
    factors : int
        Number of topics K (JStarCraft ``recommender.topic.number``).
    epochs : int
        Gibbs sweeps (``recommender.iterator.maximum``).
    alpha : float
        Initial symmetric Dirichlet prior of the user-topic mixtures
        (``recommender.user.dirichlet.prior``).
    beta : float
        Symmetric Dirichlet prior of each next-item distribution
        (``recommender.topic.dirichlet.prior``; fixed, JStarCraft re-estimates it).
    burn_in : int
        Sweeps before samples are collected (``recommender.pgm.burnin``).
    sample_lag : int
        Collect a sample every this many sweeps (``recommender.pgm.samplelag``).
    learn_priors : bool
        Learn alpha (per topic) by Minka's update after each sweep.
    seed : int or None
        Seed of the initial topics and of every sweep.
    verbose : bool
        Progress bar with the training log-likelihood per sweep.

    Learned state: ``user_topic_`` (n_users, K) ``theta``; ``smooth_`` (n_items + 1, K)
    the smoothing probability of each (previous item or start, topic); ``pair_prev_``,
    ``pair_next_`` (n_pairs,) the seen pairs and ``pair_weight_`` (n_pairs, K) their
    probability above the smoothing; ``last_item_`` (n_users,) each user's last item
    (``n_items``: none); ``item_topic_`` (n_items, K) how often each item was drawn
    from each topic, normalised per topic (for similar items); ``loglik_`` (epochs,).
    New users cannot be folded in: their items come without an order.

    Reference: Wallach, "Topic Modeling: Beyond Bag-of-Words", ICML 2006.
    """

    name = "ItemBigram"
    family = "probabilistic"
    task = "ranking"
    paper = "Wallach. Topic Modeling: Beyond Bag-of-Words. ICML 2006"
    rules = {**TOPIC_RULES, "learn_priors": Bool()}
    test_params = {"factors": 4, "epochs": 40, "burn_in": 10, "sample_lag": 5, "alpha": 0.5, "beta": 0.1}
    state: ClassVar[dict[str, StateSpec]] = {
        "user_topic_": Array("float32", ("n_users", "factors")),
        "smooth_": Array("float32", ("n_prev", "factors")),
        "pair_prev_": Array("int64", ("n_pairs",), bounds="n_prev"),
        "pair_next_": Array("int64", ("n_pairs",), bounds="n_items"),
        "pair_weight_": Array("float32", ("n_pairs", "factors")),
        "last_item_": Array("int64", ("n_users",), bounds="n_prev"),
        "item_topic_": Array("float32", ("n_items", "factors")),
        "alpha_": Array("float32", ("factors",)),
        "loglik_": Array("float64", ("epochs",), finite=False, history=True),
    }

    def __init__(self, factors: int = 10, epochs: int = 100, alpha: float = 0.01, beta: float = 0.01,
                 burn_in: int = 10, sample_lag: int = 10, learn_priors: bool = True, seed: int | None = 0,
                 verbose: bool = False) -> None:
        self.factors = factors
        self.epochs = epochs
        self.alpha = alpha
        self.beta = beta
        self.burn_in = burn_in
        self.sample_lag = sample_lag
        self.learn_priors = learn_priors
        self.seed = seed
        self.verbose = verbose

    def _fit(self, train: Interactions) -> None:
        from ._topic_kernels import bigram_sweep, chunk_bounds, count_tokens, stream_seeds

        k = int(self.factors)
        n_items = train.n_items
        indptr, items = time_ordered(train)
        counts = np.diff(indptr)
        rows = np.repeat(np.arange(train.n_users, dtype=np.int64), counts)
        prev = np.empty_like(items)
        prev[1:] = items[:-1]
        first = indptr[:-1][counts > 0]
        prev[first] = n_items
        codes, pair = np.unique(prev * n_items + items, return_inverse=True)
        pair = pair.astype(np.int64).ravel()
        pair_prev, pair_next = codes // n_items, codes % n_items
        n_pairs = len(codes)
        rng = np.random.default_rng(self.seed)
        z = rng.integers(0, k, size=len(items)).astype(np.int64)
        ut, pt, _ = count_tokens(rows, pair, z, train.n_users, n_pairs, k)
        _, jt, _ = count_tokens(rows, prev, z, train.n_users, n_items + 1, k)
        alpha = np.full(k, float(self.alpha))
        beta = float(self.beta)
        beta_sum = n_items * beta
        chunks = chunk_bounds(indptr, GIBBS_CHUNK_TOKENS)
        n_u = counts.astype(np.float64)
        theta_sum = np.zeros((train.n_users, k))
        smooth_sum = np.zeros((n_items + 1, k))
        pair_sum = np.zeros((n_pairs, k))
        samples = 0
        self.loglik_ = np.zeros(int(self.epochs), dtype=np.float64)
        bar = EpochBar(self, int(self.epochs), "log-likelihood")
        seed_base = int(self.seed) if self.seed is not None else int(rng.integers(0, 2**62))

        def read_out() -> None:
            nonlocal samples
            theta_sum[:] += (ut + alpha[None, :]) / (n_u[:, None] + alpha.sum())
            den = jt + beta_sum
            smooth_sum[:] += beta / den
            pair_sum[:] += pt / den[pair_prev]
            samples += 1

        for epoch in bar:
            ll = bigram_sweep(indptr, pair, prev, z, ut, pt, jt, alpha, beta, beta_sum, chunks,
                              stream_seeds(seed_base, epoch, len(chunks) - 1))
            self.loglik_[epoch] = ll
            if self.learn_priors:
                alpha = minka_update(alpha, ut.astype(np.float64), n_u, axis=1)
            self._check_finite(epoch, np.asarray(ll), alpha)
            if epoch > int(self.burn_in) and epoch % int(self.sample_lag) == 0:
                read_out()
            bar.report(ll / max(len(items), 1))
        if samples == 0:
            read_out()
        self.user_topic_ = (theta_sum / samples).astype(np.float32)
        self.smooth_ = (smooth_sum / samples).astype(np.float32)
        self.pair_prev_ = pair_prev.astype(np.int64)
        self.pair_next_ = pair_next.astype(np.int64)
        self.pair_weight_ = (pair_sum / samples).astype(np.float32)
        last = np.full(train.n_users, n_items, dtype=np.int64)
        has = counts > 0
        last[has] = items[indptr[1:][has] - 1]
        self.last_item_ = last
        it = np.zeros((n_items, k))
        np.add.at(it, items, np.eye(k)[z])
        tot = it.sum(axis=0, keepdims=True)
        self.item_topic_ = (it / np.where(tot > 0, tot, 1.0)).astype(np.float32)
        self.alpha_ = alpha.astype(np.float32)

    # ------------------------------------------------------------ scoring
    def _pair_matrices(self) -> list[sp.csr_array]:
        """One (n_items + 1) x n_items CSR matrix of pair weights per topic (built once)."""
        key = id(self.pair_weight_)
        cache = getattr(self, "_pairs_cache", None)
        if cache is None or cache[0] != key:
            shape = (self.smooth_.shape[0], self.n_items_)
            mats = [sp.csr_array((self.pair_weight_[:, z].astype(np.float64), (self.pair_prev_, self.pair_next_)),
                                 shape=shape) for z in range(self.pair_weight_.shape[1])]
            cache = (key, mats)
            self._pairs_cache = cache
        return cache[1]

    def _score(self, users: np.ndarray, items: np.ndarray | None) -> np.ndarray:
        theta = self.user_topic_[users].astype(np.float64)
        last = self.last_item_[users]
        base = np.einsum("nk,nk->n", theta, self.smooth_[last].astype(np.float64))
        out = np.repeat(base[:, None], self.n_items_, axis=1)
        for z, mat in enumerate(self._pair_matrices()):
            out += theta[:, z, None] * mat[last].toarray()
        if items is not None:
            out = out[:, items]
        return out.astype(np.float32)

    def item_vectors(self) -> np.ndarray:
        """Topic memberships of every item, from how often each topic drew it."""
        self._check_fitted()
        m = self.item_topic_.astype(np.float64)
        s = m.sum(axis=1, keepdims=True)
        s[s == 0] = 1.0
        return (m / s).astype(np.float32)
