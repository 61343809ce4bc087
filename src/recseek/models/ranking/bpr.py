"""Bayesian Personalized Ranking and its sampling variants: BPR, WBPR, AoBPR, GBPR."""

from __future__ import annotations

from typing import Self

import numpy as np
import scipy.sparse as sp

from ...data._interactions import Interactions
from ...errors import DataError
from .._params import Bool, Float, Int, UsedWhen
from ..base import check_k
from ..registry import register
from ._base import COMMON_RULES, FactorRanker, active_users, dynamic_schedule


class _BPRFamily(FactorRanker):
    """Hyperparameters and the training loop shared by BPR-style models."""

    def _samples(self, train: Interactions) -> int:
        return int(self.samples_per_epoch) if self.samples_per_epoch is not None else int(train.nnz)

    def _kernel_args(self) -> tuple:
        f32 = np.float32
        return (f32(self.learning_rate), f32(self.reg), f32(self.reg), f32(self.reg_bias))


@register
class BPR(_BPRFamily):
    """Bayesian Personalized Ranking: matrix factorization trained with BPR-Opt.

    Maximises ``sum ln sigmoid(x_ui - x_uj)`` over triples of a user, an item the user
    interacted with and an item the user did not, drawn at random (negatives uniformly,
    rejected while in the user's row), with L2 regularisation; lock-free parallel SGD.

    Parameters
    ----------
    factors : int
        Latent dimensions.
    epochs : int
        Passes; each draws ``samples_per_epoch`` triples.
    learning_rate, reg : float
        SGD step and L2 penalty of user and item factors.
    item_bias : bool
        Learn an item bias (regularised by ``reg_bias``).
    sampling : {"interaction", "user"}
        Draw the positive uniformly over interactions, or a user uniformly first and
        then one of the user's items (JStarCraft's scheme).
    samples_per_epoch : int, optional
        Triples per epoch (default: the number of training interactions).
    init_std : float
        Standard deviation of the normal initialisation.

    Reference: Rendle, Freudenthaler, Gantner, Schmidt-Thieme, "BPR: Bayesian
    Personalized Ranking from Implicit Feedback", UAI 2009.
    """

    name = "BPR"
    paper = ("Rendle, Freudenthaler, Gantner, Schmidt-Thieme. BPR: Bayesian Personalized Ranking "
             "from Implicit Feedback. UAI 2009")
    rules = {**COMMON_RULES, "item_bias": Bool(), "reg_bias": UsedWhen("item_bias", (True,), Float(lo=0.0))}
    test_params = {"factors": 8, "epochs": 20, "learning_rate": 0.05}

    def __init__(
        self,
        factors: int = 64,
        epochs: int = 100,
        learning_rate: float = 0.05,
        reg: float = 0.01,
        reg_bias: float = 0.01,
        item_bias: bool = True,
        sampling: str = "interaction",
        samples_per_epoch: int | None = None,
        init_std: float = 0.1,
        seed: int | None = 0,
        verbose: bool = False,
    ) -> None:
        self.factors = factors
        self.epochs = epochs
        self.learning_rate = learning_rate
        self.reg = reg
        self.reg_bias = reg_bias
        self.item_bias = item_bias
        self.sampling = sampling
        self.samples_per_epoch = samples_per_epoch
        self.init_std = init_std
        self.seed = seed
        self.verbose = verbose

    def _fit(self, train: Interactions) -> None:
        self._init_factors(train.n_users, train.n_items, self._rng())
        indptr, indices = self._seen_arrays()
        # the positives pool shares the item column with the rejection index (no copy)
        pool_u = np.repeat(np.arange(train.n_users, dtype=np.int32), np.diff(indptr))
        self._run(pool_u, indices, active_users(train), self._samples(train), int(self.epochs), 0,
                  indptr, indices)

    def _run(self, pool_u: np.ndarray, pool_i: np.ndarray, active: np.ndarray, n_samples: int,
             epochs: int, epoch_offset: int, indptr: np.ndarray | None = None,
             indices: np.ndarray | None = None) -> None:
        from ._kernels import bpr_epoch, chunk_seeds

        if indptr is None or indices is None:
            indptr, indices = self._seen_arrays()
        n_chunks = self._n_chunks(n_samples)
        seed = int(self.seed or 0)
        lr, reg_u, reg_i, reg_b = self._kernel_args()
        for epoch in self._progress(range(epochs), total=epochs):
            with dynamic_schedule():
                bpr_epoch(self.user_factors_, self.item_factors_, self.item_bias_, indptr, indices, pool_u, pool_i,
                          active, n_samples, self.sampling == "user", lr, reg_u, reg_i, reg_b,
                          bool(self.item_bias), chunk_seeds(seed, epoch + epoch_offset, n_chunks))
            self._check_epoch(epoch + epoch_offset)

    def partial_fit(self, new_interactions: Interactions, epochs: int | None = None) -> Self:
        """Continue training on new records (raw ids may name new users and items).

        The vocabularies grow with the unseen ids (existing indices kept), new users and
        items get freshly initialised factors, and ``epochs`` (default: a tenth of
        ``epochs``, at least 1) passes are run over the new records only, with negatives
        rejected against each user's full history.
        """
        self._require_history("partial_fit")
        if not isinstance(new_interactions, Interactions):
            raise DataError(f"BPR.partial_fit expects Interactions, got {type(new_interactions).__name__}")
        if new_interactions.nnz == 0:
            raise DataError("BPR.partial_fit: the new interactions are empty")
        n_epochs = max(1, int(self.epochs) // 10) if epochs is None else check_k(epochs, "epochs")
        lu, li, _, _ = new_interactions.to_coo()
        used_u = np.unique(lu)
        used_i = np.unique(li)
        users = self.users_.extend(new_interactions.users.ids[used_u])
        items = self.items_.extend(new_interactions.items.ids[used_i])
        umap = np.full(new_interactions.n_users, -1, dtype=np.int64)
        imap = np.full(new_interactions.n_items, -1, dtype=np.int64)
        umap[used_u] = users.indices(new_interactions.users.ids[used_u])
        imap[used_i] = items.indices(new_interactions.items.ids[used_i])
        u = umap[lu]
        i = imap[li]
        n_users, n_items = len(users), len(items)
        # grow the state
        rng = np.random.default_rng([int(self.seed or 0), self.n_users_, self.n_items_])
        k = self.user_factors_.shape[1]
        std = np.float32(self.init_std)
        self.user_factors_ = np.vstack([
            self.user_factors_, rng.standard_normal((n_users - self.n_users_, k), dtype=np.float32) * std
        ]).astype(np.float32)
        self.item_factors_ = np.vstack([
            self.item_factors_, rng.standard_normal((n_items - self.n_items_, k), dtype=np.float32) * std
        ]).astype(np.float32)
        self.item_bias_ = np.concatenate([self.item_bias_, np.zeros(n_items - self.n_items_, dtype=np.float32)])
        old = sp.coo_array(self.seen_)
        rows = np.concatenate([old.row.astype(np.int64), u])
        cols = np.concatenate([old.col.astype(np.int64), i])
        seen = sp.csr_array((np.ones(len(rows), dtype=np.float32), (rows, cols)), shape=(n_users, n_items))
        seen.sum_duplicates()
        seen.sort_indices()
        seen.data[:] = 1.0
        self.seen_ = seen
        self.users_, self.items_ = users, items
        self.n_users_, self.n_items_ = n_users, n_items
        pool_u = u.astype(np.int32)
        pool_i = i.astype(np.int32)
        self._partial_epochs_ = int(getattr(self, "_partial_epochs_", 0)) + n_epochs
        self._run(pool_u, pool_i, np.unique(pool_u), len(pool_u), n_epochs,
                  int(self.epochs) + self._partial_epochs_ - n_epochs)
        return self


@register
class WBPR(_BPRFamily):
    """Weighted BPR: BPR with item biases whose negatives are drawn in proportion to item
    popularity (among items the user has not interacted with), so that popular items
    are pushed down more often than under uniform sampling.

    Reference: Gantner, Drumond, Freudenthaler, Schmidt-Thieme, "Bayesian Personalized
    Ranking for Non-Uniformly Sampled Items", JMLR W&CP (KDD Cup 2011), 2012.
    """

    name = "WBPR"
    paper = ("Gantner, Drumond, Freudenthaler, Schmidt-Thieme. Bayesian Personalized Ranking for "
             "Non-Uniformly Sampled Items. JMLR Workshop and Conference Proceedings 18 (KDD Cup 2011), 2012")
    rules = {**COMMON_RULES}
    test_params = {"factors": 8, "epochs": 20, "learning_rate": 0.05}

    def __init__(
        self,
        factors: int = 64,
        epochs: int = 100,
        learning_rate: float = 0.05,
        reg: float = 0.01,
        reg_bias: float = 0.01,
        sampling: str = "user",
        samples_per_epoch: int | None = None,
        init_std: float = 0.1,
        seed: int | None = 0,
        verbose: bool = False,
    ) -> None:
        self.factors = factors
        self.epochs = epochs
        self.learning_rate = learning_rate
        self.reg = reg
        self.reg_bias = reg_bias
        self.sampling = sampling
        self.samples_per_epoch = samples_per_epoch
        self.init_std = init_std
        self.seed = seed
        self.verbose = verbose

    def _negative_law(self, train: Interactions, rng: np.random.Generator) -> dict:
        pop = np.bincount(train.matrix.indices, minlength=train.n_items).astype(np.float64)
        items = np.flatnonzero(pop > 0).astype(np.int64)
        return {"neg_mode": 1, "cdf": np.cumsum(pop[items]), "cdf_items": items}

    def _fit(self, train: Interactions) -> None:
        from ._kernels import LOSS_LOGISTIC

        rng = self._rng()
        self._init_factors(train.n_users, train.n_items, rng)
        self.item_bias_[:] = rng.random(train.n_items, dtype=np.float32) * 0.01
        law = self._negative_law(train, rng)
        run_pairwise(self, train, LOSS_LOGISTIC, law, use_bias=True)


def run_pairwise(model: FactorRanker, train: Interactions, loss_kind: int, law: dict, *, use_bias: bool,
                 sweep: bool = False, margin: float = 0.0, max_trials: int = 1,
                 rank_weights: np.ndarray | None = None, before_block=None, block: int | None = None) -> None:
    """Train ``model`` with :func:`pairwise_epoch` for ``model.epochs`` epochs.

    ``sweep``: one pass over the interactions in shuffled order per epoch; otherwise
    ``samples_per_epoch`` positives drawn uniformly (over users first when
    ``model.sampling == "user"``). ``before_block(model)`` refreshes sampler state every
    ``block`` samples (AoBPR) and returns the law's updated arrays.
    """
    from ._kernels import chunk_seeds, pairwise_epoch

    indptr, indices = model._seen_arrays()
    values = np.asarray(train.matrix.data, dtype=np.float32)
    k = model.user_factors_.shape[1]
    empty_f = np.zeros(1, dtype=np.float64)
    empty_i = np.zeros(1, dtype=np.int64)
    cdf = law.get("cdf", empty_f)
    cdf_items = law.get("cdf_items", empty_i)
    ranks = law.get("ranks", np.zeros((k, 1), dtype=np.int64))
    factor_w = law.get("factor_w", np.zeros(k, dtype=np.float64))
    rank_cdf = law.get("rank_cdf", empty_f)
    rw = np.ones(1, dtype=np.float32) if rank_weights is None else rank_weights
    counts = np.diff(indptr)
    rng = model._rng()
    if sweep:
        n_samples = 0
    else:
        n_samples = int(model.samples_per_epoch) if model.samples_per_epoch is not None else int(train.nnz)
    user_mode = getattr(model, "sampling", "interaction") == "user"
    seed = int(model.seed or 0)
    f32 = np.float32
    reg_b = f32(getattr(model, "reg_bias", 0.0))
    for epoch in model._progress(range(int(model.epochs)), total=int(model.epochs)):
        if sweep:
            pool = rng.permutation(train.nnz).astype(np.int64)
            sizes = [len(pool)]
        elif user_mode:
            # a user uniformly, then one of the user's items uniformly
            act = np.flatnonzero(counts > 0)
            us = act[rng.integers(0, len(act), n_samples)]
            pool = indptr[us] + (rng.random(n_samples) * counts[us]).astype(np.int64)
            sizes = [n_samples]
        else:
            pool = np.arange(train.nnz, dtype=np.int64)
            sizes = [n_samples]
        if block is not None and not sweep:
            sizes = [min(block, n_samples - s) for s in range(0, n_samples, block)]
        offset = 0
        for part, size in enumerate(sizes):
            if before_block is not None:
                law = before_block(model)
                ranks, factor_w, rank_cdf = law["ranks"], law["factor_w"], law["rank_cdf"]
            if user_mode and not sweep:
                # the drawn positions are consumed in order, one per sample
                sub = pool[offset: offset + size]
                count = -1
            else:
                sub = pool
                count = size if not sweep else 0
            offset += size
            with dynamic_schedule():
                pairwise_epoch(
                    model.user_factors_, model.item_factors_, model.item_bias_, indptr, indices, values, sub,
                    count, loss_kind, int(law.get("neg_mode", 0)), f32(model.learning_rate), f32(model.reg),
                    f32(model.reg), reg_b, use_bias, cdf, cdf_items, ranks, factor_w, rank_cdf, f32(margin),
                    int(max_trials), rw, chunk_seeds(seed, epoch * 1000 + part, model._n_chunks(size)),
                )
        model._check_epoch(epoch)


@register
class AoBPR(_BPRFamily):
    """BPR with adaptive oversampling of informative negatives.

    For a positive pair (u, i), a latent factor f is chosen with probability
    proportional to ``|U_uf| * var(V_.f)`` and a rank r from a geometric law
    ``p(r) ~ exp(-r / (item_rank_scale * n_items))``; the negative is the item at rank r of
    factor f (from the top when ``U_uf > 0``, else from the bottom), rejected while in the
    user's row. The per-factor item rankings are refreshed every ``n_items log n_items``
    samples.

    Reference: Rendle, Freudenthaler, "Improving Pairwise Learning for Item
    Recommendation from Implicit Feedback", WSDM 2014.
    """

    name = "AoBPR"
    paper = ("Rendle, Freudenthaler. Improving Pairwise Learning for Item Recommendation from Implicit "
             "Feedback. WSDM 2014")
    rules = {**COMMON_RULES, "item_rank_scale": Float(lo=0.0, lo_open=True)}
    test_params = {"factors": 8, "epochs": 20, "learning_rate": 0.05}

    def __init__(
        self,
        factors: int = 64,
        epochs: int = 100,
        learning_rate: float = 0.05,
        reg: float = 0.01,
        item_rank_scale: float = 0.05,
        samples_per_epoch: int | None = None,
        init_std: float = 0.1,
        seed: int | None = 0,
        verbose: bool = False,
    ) -> None:
        self.factors = factors
        self.epochs = epochs
        self.learning_rate = learning_rate
        self.reg = reg
        self.item_rank_scale = item_rank_scale
        self.samples_per_epoch = samples_per_epoch
        self.init_std = init_std
        self.seed = seed
        self.verbose = verbose

    def _fit(self, train: Interactions) -> None:
        from ._kernels import LOSS_LOGISTIC

        self._init_factors(train.n_users, train.n_items, self._rng())
        n_items = train.n_items
        lam = max(float(self.item_rank_scale) * n_items, 1e-9)
        rank_cdf = np.cumsum(np.exp(-(np.arange(n_items) + 1.0) / lam))

        def refresh(model: AoBPR) -> dict:
            V = model.item_factors_
            ranks = np.ascontiguousarray(np.argsort(-V, axis=0, kind="stable").T).astype(np.int64)
            return {"neg_mode": 2, "ranks": ranks, "factor_w": V.var(axis=0).astype(np.float64),
                    "rank_cdf": rank_cdf}

        block = max(1, int(n_items * np.log(max(n_items, 2))))
        run_pairwise(self, train, LOSS_LOGISTIC, refresh(self), use_bias=False, before_block=refresh, block=block)


@register
class GBPR(FactorRanker):
    """Group Bayesian Personalized Ranking.

    The preference of user u for a positive item i is blended with that of a group G
    (u plus ``group_size - 1`` other users who interacted with i):
    ``x_Gui = rho * mean_{w in G} <U_w, V_i> + (1 - rho) <U_u, V_i> + b_i``, and
    ``-ln sigmoid(x_Gui - x_uj)`` is minimised against a uniformly drawn negative j.

    Reference: Pan, Chen, "GBPR: Group Preference Based Bayesian Personalized Ranking
    for One-Class Collaborative Filtering", IJCAI 2013.
    """

    name = "GBPR"
    paper = ("Pan, Chen. GBPR: Group Preference Based Bayesian Personalized Ranking for One-Class "
             "Collaborative Filtering. IJCAI 2013")
    rules = {**COMMON_RULES, "rho": Float(lo=0.0), "group_size": Int(lo=1)}
    test_params = {"factors": 8, "epochs": 20, "learning_rate": 0.05}

    def __init__(
        self,
        factors: int = 64,
        epochs: int = 100,
        learning_rate: float = 0.05,
        reg: float = 0.01,
        reg_bias: float = 0.01,
        rho: float = 0.8,
        group_size: int = 3,
        samples_per_epoch: int | None = None,
        init_std: float = 0.1,
        seed: int | None = 0,
        verbose: bool = False,
    ) -> None:
        self.factors = factors
        self.epochs = epochs
        self.learning_rate = learning_rate
        self.reg = reg
        self.reg_bias = reg_bias
        self.rho = rho
        self.group_size = group_size
        self.samples_per_epoch = samples_per_epoch
        self.init_std = init_std
        self.seed = seed
        self.verbose = verbose

    def _fit(self, train: Interactions) -> None:
        from ._kernels import chunk_seeds, gbpr_epoch

        rng = self._rng()
        self._init_factors(train.n_users, train.n_items, rng)
        self.item_bias_[:] = rng.random(train.n_items, dtype=np.float32)
        indptr, indices = self._seen_arrays()
        cols = sp.csc_array(self.seen_)
        col_ptr = np.asarray(cols.indptr, dtype=np.int64)
        col_users = np.asarray(cols.indices, dtype=np.int32)
        act = active_users(train)
        n = int(self.samples_per_epoch) if self.samples_per_epoch is not None else int(train.nnz)
        f32 = np.float32
        n_chunks = self._n_chunks(n)
        for epoch in self._progress(range(int(self.epochs)), total=int(self.epochs)):
            with dynamic_schedule():
                gbpr_epoch(self.user_factors_, self.item_factors_, self.item_bias_, indptr, indices, col_ptr, col_users,
                           act, n, int(self.group_size), f32(self.rho), f32(self.learning_rate), f32(self.reg),
                           f32(self.reg), f32(self.reg_bias), chunk_seeds(int(self.seed or 0), epoch, n_chunks))
            self._check_epoch(epoch)
