"""VBPR: Bayesian personalised ranking with item (visual) features."""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np
import scipy.sparse as sp

from ...data._interactions import Interactions
from ...errors import DataError
from .._params import Choice, Float, Int
from ..base import Array, Recommender, Scalar, StateSpec
from ..registry import register


class EpochBar:
    """A progress bar over a model's epochs showing its training loss (when ``verbose``)."""

    def __init__(self, model: Any, epochs: int, what: str = "loss") -> None:
        self.bar = None
        self.what = what
        if getattr(model, "verbose", False):
            from tqdm.auto import tqdm

            self.bar = tqdm(total=epochs, desc=model.display_name, leave=False)

    def update(self, value: float) -> None:
        if self.bar is not None:
            self.bar.update(1)
            self.bar.set_postfix({self.what: f"{value:.5g}"})

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


def scaled_features(train: Interactions, model: str) -> tuple[sp.csr_array, float]:
    """The training data's item features divided by their largest absolute value, and that value.

    Features of any range then share one learning rate and penalty (JStarCraft min-max
    scales its visual features for the same reason); zeros stay zeros.
    """
    f = train.item_features
    if f is None:
        raise DataError(f"{model} needs item features (Interactions.item_features), and the training data has none")
    f = sp.csr_array(f, dtype=np.float32)
    if f.shape[0] != train.n_items:
        raise DataError(f"{model}: item_features has {f.shape[0]} rows for {train.n_items} items")
    if f.shape[1] == 0:
        raise DataError(f"{model}: item_features has no columns")
    f.sum_duplicates()
    f.sort_indices()
    if f.nnz and not np.isfinite(f.data).all():
        raise DataError(f"{model}: item_features holds NaN or infinite values")
    top = float(np.abs(f.data).max()) if f.nnz else 0.0
    scale = top if top > 0 else 1.0
    return sp.csr_array((f.data / np.float32(scale), f.indices, f.indptr), shape=f.shape), scale


def csr_arrays(m: sp.csr_array) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    return (np.asarray(m.indptr, dtype=np.int64), np.asarray(m.indices, dtype=np.int32),
            np.asarray(m.data, dtype=np.float32))


@register
class VBPR(Recommender):
    """VBPR: visual Bayesian personalised ranking from implicit feedback.

    He & McAuley (AAAI 2016). The preference of user u for item i adds a feature
    part to BPR's matrix factorisation:

    ``x_ui = b_i + gamma_u . gamma_i + theta_u . (E^T f_i) + beta' . f_i``

    where ``f_i`` is the item's feature vector (the paper's CNN image features; any
    numeric item features here), ``E`` (n_features, feature_factors) projects it to a
    low-dimensional "visual" space and ``beta'`` is a per-feature bias. BPR-Opt
    ``sum ln sigmoid(x_ui - x_uj) - penalties`` is maximised by SGD on triples of a
    user, an item of theirs and a uniformly drawn other item (lock-free parallel SGD;
    one thread reproduces a seed exactly). Items with few or no training interactions
    are still ranked by their features: that is the point of the model.

    Features are divided by their largest absolute value before training. ``E`` and
    ``beta'`` are updated (and regularised) only in the rows that ``f_i - f_j``
    touches, so sparse features cost what they store.

    Parameters
    ----------
    factors : int
        K, the length of gamma_u and gamma_i.
    feature_factors : int
        K', the length of theta_u and of the projected item features ``E^T f_i``.
    epochs : int
        Passes; each draws ``samples_per_epoch`` triples.
    learning_rate : float
        SGD step.
    reg : float
        L2 penalty on gamma_u, gamma_i and theta_u.
    reg_bias : float
        L2 penalty on the item biases b_i.
    reg_feature : float
        L2 penalty on ``E`` and ``beta'`` (the paper's lambda_E).
    sampling : {"interaction", "user"}
        Positives uniformly over interactions (the paper), or a user uniformly and then
        one of the user's items (JStarCraft).
    samples_per_epoch : int, optional
        Triples per epoch (default: the number of training interactions).
    init_std : float
        Standard deviation of the normal initialisation of every parameter.
    seed, verbose
        As usual; ``verbose`` shows the BPR loss per epoch.

    Learned state: ``user_factors_`` (n_users, K), ``item_factors_`` (n_items, K),
    ``item_bias_`` (n_items,), ``user_feature_factors_`` (n_users, K'),
    ``feature_factors_`` (n_features, K'), ``feature_bias_`` (n_features,), and the
    projections used for scoring, ``item_feature_factors_ = F E`` (n_items, K') and
    ``item_feature_bias_ = F beta'`` (n_items,).

    JStarCraft (``VBPRModel``): ``recommender.factor.number`` -> ``factors`` and
    ``feature_factors`` (one size for both there), ``recommender.iterator.learnrate``
    -> ``learning_rate``, ``recommender.iterator.maximum`` -> ``epochs``,
    ``recommender.user/item.regularization`` -> ``reg``,
    ``recommender.bias.regularization`` -> ``reg_bias``, ``recommender.vbpr.alpha`` ->
    ``samples_per_epoch = alpha * n_users`` with ``sampling="user"``,
    ``recommender.init.std`` -> ``init_std``. JStarCraft fixes lambda_E at 1000 (with
    a step of 0.001, which zeroes ``E`` at every sample) and 4096 features; here both
    follow the data and ``reg_feature``.
    """

    name = "VBPR"
    task = "ranking"
    family = "content"
    paper = ("He & McAuley. VBPR: Visual Bayesian Personalized Ranking from Implicit Feedback. "
             "AAAI 2016")
    requires = ("item_features",)
    rules = {
        "feature_factors": Int(lo=1),
        "reg_feature": Float(lo=0.0),
        "reg_bias": Float(lo=0.0),
        "sampling": Choice(("interaction", "user")),
        "samples_per_epoch": Int(lo=1, none_ok=True),
    }
    test_params = {"factors": 8, "feature_factors": 4, "epochs": 20, "learning_rate": 0.05}
    #: Fold-in: BPR steps per interaction of a new user, and their learning rate.
    fold_in_steps: ClassVar[int] = 150
    fold_in_learning_rate: ClassVar[float] = 0.05
    state: ClassVar[dict[str, StateSpec]] = {
        "user_factors_": Array("float32", ("n_users", "factors")),
        "item_factors_": Array("float32", ("n_items", "factors")),
        "item_bias_": Array("float32", ("n_items",)),
        "user_feature_factors_": Array("float32", ("n_users", "feature_factors")),
        "feature_factors_": Array("float32", ("n_features", "feature_factors")),
        "feature_bias_": Array("float32", ("n_features",)),
        "item_feature_factors_": Array("float32", ("n_items", "feature_factors")),
        "item_feature_bias_": Array("float32", ("n_items",)),
        "feature_scale_": Scalar(float),
    }

    def __init__(
        self,
        factors: int = 20,
        feature_factors: int = 20,
        epochs: int = 50,
        learning_rate: float = 0.05,
        reg: float = 0.01,
        reg_bias: float = 0.01,
        reg_feature: float = 0.01,
        sampling: str = "interaction",
        samples_per_epoch: int | None = None,
        init_std: float = 0.1,
        seed: int | None = 0,
        verbose: bool = False,
    ) -> None:
        self.factors = factors
        self.feature_factors = feature_factors
        self.epochs = epochs
        self.learning_rate = learning_rate
        self.reg = reg
        self.reg_bias = reg_bias
        self.reg_feature = reg_feature
        self.sampling = sampling
        self.samples_per_epoch = samples_per_epoch
        self.init_std = init_std
        self.seed = seed
        self.verbose = verbose

    # ------------------------------------------------------------ training
    def _fit(self, train: Interactions) -> None:
        from ..ranking._base import FactorRanker, dynamic_schedule
        from ..ranking._kernels import chunk_seeds
        from ._e_kernels import project_items, vbpr_epoch

        feats, scale = scaled_features(train, self.display_name)
        self.feature_scale_ = float(scale)
        f_indptr, f_indices, f_data = csr_arrays(feats)
        n_features = feats.shape[1]
        rng = np.random.default_rng(self.seed)
        std = np.float32(self.init_std)
        k, kv = int(self.factors), int(self.feature_factors)

        def normal(*shape: int) -> np.ndarray:
            return (rng.standard_normal(shape, dtype=np.float32) * std).astype(np.float32)

        self.user_factors_ = normal(train.n_users, k)
        self.item_factors_ = normal(train.n_items, k)
        self.item_bias_ = np.zeros(train.n_items, dtype=np.float32)
        self.user_feature_factors_ = normal(train.n_users, kv)
        self.feature_factors_ = normal(n_features, kv)
        self.feature_bias_ = np.zeros(n_features, dtype=np.float32)
        m = self.seen_
        indptr = np.asarray(m.indptr, dtype=np.int64)
        indices = np.asarray(m.indices, dtype=np.int32)
        pool_u = np.repeat(np.arange(train.n_users, dtype=np.int32), np.diff(indptr))
        active = np.flatnonzero(np.diff(indptr) > 0).astype(np.int32)
        n_samples = int(self.samples_per_epoch) if self.samples_per_epoch is not None else int(train.nnz)
        n_chunks = FactorRanker._n_chunks(n_samples)
        f32 = np.float32
        seed = int(self.seed or 0)
        bar = EpochBar(self, int(self.epochs))
        try:
            for epoch in range(int(self.epochs)):
                with dynamic_schedule():
                    loss = vbpr_epoch(
                        self.user_factors_, self.item_factors_, self.item_bias_, self.user_feature_factors_,
                        self.feature_factors_, self.feature_bias_, f_indptr, f_indices, f_data, indptr, indices,
                        pool_u, indices, active, n_samples, self.sampling == "user", f32(self.learning_rate),
                        f32(self.reg), f32(self.reg_bias), f32(self.reg_feature), chunk_seeds(seed, epoch, n_chunks),
                    )
                self._check_finite(epoch, np.asarray([loss]), self.user_factors_, self.item_factors_,
                                   self.user_feature_factors_, self.feature_factors_, self.feature_bias_,
                                   self.item_bias_)
                bar.update(float(loss) / max(n_samples, 1))
        finally:
            bar.close()
        self.item_feature_factors_, self.item_feature_bias_ = project_items(
            f_indptr, f_indices, f_data, self.feature_factors_, self.feature_bias_)

    # ------------------------------------------------------------ scoring
    def _score(self, users: np.ndarray, items: np.ndarray | None) -> np.ndarray:
        sel = slice(None) if items is None else items
        out = self.user_factors_[users] @ self.item_factors_[sel].T
        out += self.user_feature_factors_[users] @ self.item_feature_factors_[sel].T
        out += (self.item_bias_[sel] + self.item_feature_bias_[sel])[None, :]
        return out.astype(np.float32, copy=False)

    def item_vectors(self) -> np.ndarray:
        """Each item's ``[gamma_i, E^T f_i]`` (n_items, factors + feature_factors)."""
        self._check_fitted()
        return np.hstack([self.item_factors_, self.item_feature_factors_])

    def user_vectors(self) -> np.ndarray:
        """Each user's ``[gamma_u, theta_u]`` (n_users, factors + feature_factors)."""
        self._check_fitted()
        return np.hstack([self.user_factors_, self.user_feature_factors_])

    def _score_new(self, rows: sp.csr_array) -> np.ndarray:
        """Fold-in: ``[gamma_u, theta_u]`` of new users by BPR steps on the fixed items."""
        from ..ranking._kernels import bpr_fold_in

        rows = sp.csr_array(rows)
        rows.sum_duplicates()
        rows.sort_indices()
        items = self.item_vectors()
        bias = self.item_bias_ + self.item_feature_bias_
        u = bpr_fold_in(np.asarray(rows.indptr, dtype=np.int64), np.asarray(rows.indices, dtype=np.int32),
                        items, bias, True, int(items.shape[1]), int(self.fold_in_steps),
                        np.float32(self.fold_in_learning_rate), np.float32(self.reg), int(self.seed or 0))
        return (u @ items.T + bias[None, :]).astype(np.float32)
