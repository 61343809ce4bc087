"""LambdaFM: factorization machines trained for ranking with lambda-weighted pairs (Yuan et al. 2016).

Three samplers of the paper, one registered model each: ``LambdaFMStatic``
(popularity-ranked negatives), ``LambdaFMDynamic`` (the best-scored of several uniform
draws, rank-weighted) and ``LambdaFMWeight`` (uniform draws until one violates the
margin, the pair weighted by the implied rank).
"""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np
import scipy.sparse as sp

from ...data._interactions import Interactions
from .._params import Float, Int
from ..base import Array, Recommender, StateSpec
from ..registry import register
from ._train import DEVICE_RULE, NeuralModel, _contains, indptr_keys, sample_negatives, train_epochs

_REFERENCE = ("Yuan, Guo, Jose, Chen, Yu, Zhang. LambdaFM: Learning Optimal Ranking with Factorization Machines "
              "Using Lambda Surrogates. CIKM 2016")


class _LambdaFM(NeuralModel, Recommender):
    """The shared part: FM on the user and item fields, pairwise log loss, one sampler per subclass.

    With one-hot user and item fields the FM score is ``w0 + w_u + w_i + <v_u, v_i>``;
    ``w0`` and ``w_u`` cancel in every pair of one user, so the learned score is
    ``s_ui = w_i + <v_u, v_i>``. Each epoch visits every training pair (u, i) once, in
    mini-batches, draws a negative j with the model's sampler and minimises (Adam)::

        lambda_uij * -ln sigmoid(s_ui - s_uj)
        + reg / 2 (|v_u|^2 + |v_i|^2 + |v_j|^2) + reg_bias / 2 (w_i^2 + w_j^2)

    The fitted model is a biased dot product (``user_factors_``, ``item_factors_``,
    ``item_bias_``): scoring and saved files need numpy only, and it can be ranked on a
    device (``recseek.models._device_scoring``).

    JStarCraft's properties map as ``recommender.factor.number`` -> ``factors``,
    ``recommender.iterator.maximum`` -> ``epochs``, ``recommender.fm.regF`` -> ``reg``,
    ``recommender.fm.regW`` -> ``reg_bias`` (``regw0`` has no effect: w0 cancels),
    ``recommender.iterator.learnrate`` -> ``learning_rate`` (plain SGD there, Adam here).
    JStarCraft's published LambdaFM rows are on its ``game`` data set, which has context
    fields; here the two id fields are the features.
    """

    family = "neural"
    paper = _REFERENCE
    state: ClassVar[dict[str, StateSpec]] = {
        "user_factors_": Array("float32", ("n_users", "factors")),
        "item_factors_": Array("float32", ("n_items", "factors")),
        "item_bias_": Array("float32", ("n_items",)),
    }

    def _negatives(self, t: Any, u: np.ndarray, i: np.ndarray, s_pos: Any, score: Any,
                   rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
        """``(negatives, lambda weights)`` for the batch's positive pairs."""
        raise NotImplementedError

    def _prepare(self, train: Interactions) -> None:
        """Sampler state computed once before training."""

    def _fit(self, train: Interactions) -> None:
        t = self._torch()
        device = self._device()
        seen = sp.csr_array(train.matrix)
        self._seen_pattern = (seen.indptr, seen.indices)
        self._keys = indptr_keys(seen.indptr, seen.indices, train.n_items)
        self._prepare(train)
        k = int(self.factors)
        rng = self._numpy_rng()
        std = np.float32(self.init_std)
        uf = t.nn.Parameter(t.from_numpy(rng.standard_normal((train.n_users, k), dtype=np.float32) * std).to(device))
        vf = t.nn.Parameter(t.from_numpy(rng.standard_normal((train.n_items, k), dtype=np.float32) * std).to(device))
        wb = t.nn.Parameter(t.zeros(train.n_items, device=device))
        holder = t.nn.Module()
        holder.uf, holder.vf, holder.wb = uf, vf, wb
        opt = t.optim.Adam([uf, vf, wb], lr=float(self.learning_rate))
        pos_u = np.repeat(np.arange(train.n_users, dtype=np.int64), np.diff(seen.indptr))
        pos_i = seen.indices.astype(np.int64)
        reg, reg_b = float(self.reg), float(self.reg_bias)

        def score(users: Any, items: Any) -> Any:
            """Scores of users (b,) against items (b,) or (b, m)."""
            pu = uf[users]
            if items.dim() == 1:
                return wb[items] + (pu * vf[items]).sum(dim=1)
            return wb[items] + t.einsum("bk,bmk->bm", pu, vf[items])

        def batch_loss(idx: Any, epoch: int) -> Any:
            b = idx.numpy()
            u, i = pos_u[b], pos_i[b]
            tu, ti = t.from_numpy(u).to(device), t.from_numpy(i).to(device)
            s_pos = score(tu, ti)
            with t.no_grad():
                j, weight = self._negatives(t, u, i, s_pos.detach(), score, rng)
            tj = t.from_numpy(j).to(device)
            s_neg = score(tu, tj)
            lam = t.from_numpy(weight.astype(np.float32)).to(device)
            loss = (lam * t.nn.functional.softplus(s_neg - s_pos)).mean()
            penalty = (uf[tu].pow(2).sum(1) + vf[ti].pow(2).sum(1) + vf[tj].pow(2).sum(1)).mean()
            bias_penalty = (wb[ti].pow(2) + wb[tj].pow(2)).mean()
            return loss + reg / 2 * penalty + reg_b / 2 * bias_penalty

        train_epochs(self, holder, opt, len(pos_u), batch_loss, epochs=int(self.epochs),
                     batch_size=int(self.batch_size), generator=self._generator())
        self.user_factors_ = np.ascontiguousarray(uf.detach().cpu().numpy().astype(np.float32))
        self.item_factors_ = np.ascontiguousarray(vf.detach().cpu().numpy().astype(np.float32))
        self.item_bias_ = wb.detach().cpu().numpy().astype(np.float32)
        del self._seen_pattern, self._keys
        self._check_finite(int(self.epochs), self.user_factors_, self.item_factors_, self.item_bias_)

    def _uniform(self, u: np.ndarray, count: int, rng: np.random.Generator) -> np.ndarray:
        indptr, indices = self._seen_pattern
        return sample_negatives(indptr, indices, u, self.n_items_, count, rng)

    def _score(self, users: np.ndarray, items: np.ndarray | None) -> np.ndarray:
        v = self.item_factors_ if items is None else self.item_factors_[items]
        b = self.item_bias_ if items is None else self.item_bias_[items]
        return (self.user_factors_[users] @ v.T + b).astype(np.float32)

    def item_vectors(self) -> np.ndarray:
        self._check_fitted()
        return self.item_factors_

    def user_vectors(self) -> np.ndarray:
        self._check_fitted()
        return self.user_factors_


_COMMON = {"device": DEVICE_RULE}


@register
class LambdaFMStatic(_LambdaFM):
    """LambdaFM with the static sampler: negatives drawn by popularity rank.

    The item of popularity rank r (0 = most popular in training) is drawn with
    probability proportional to ``exp(-(r + 1) / (rho * n_items))``, redrawn while the
    user interacted with it; every pair has weight 1. JStarCraft's
    ``recommender.item.distribution.parameter`` is ``rho``. See :class:`_LambdaFM` for
    the model, the loss and the mapping of the other settings.

    Parameters
    ----------
    factors, epochs, batch_size, learning_rate, reg, reg_bias, init_std
        FM dimension, passes over the training pairs, pairs per Adam step, Adam's step,
        L2 weights of the factors and of the item weights, std of the initial factors.
    rho : float
        Spread of the popularity law as a share of the catalogue (larger: flatter).
    device, seed, verbose
        See :class:`~recseek.models.neural.multvae.MultVAE`.

    Reference: Yuan, Guo, Jose, Chen, Yu, Zhang, "LambdaFM: Learning Optimal Ranking with
    Factorization Machines Using Lambda Surrogates", CIKM 2016.
    """

    name = "LambdaFMStatic"
    rules = {**_COMMON, "rho": Float(lo=0.0, lo_open=True)}
    test_params = {"factors": 8, "epochs": 15, "batch_size": 256, "learning_rate": 0.05, "rho": 1.0,
                   "device": "cpu"}

    def __init__(self, factors: int = 10, rho: float = 1.0, epochs: int = 30, batch_size: int = 256,
                 learning_rate: float = 0.01, reg: float = 0.001, reg_bias: float = 0.001, init_std: float = 0.1,
                 device: str = "auto", seed: int | None = 0, verbose: bool = False) -> None:
        self.factors = factors
        self.rho = rho
        self.epochs = epochs
        self.batch_size = batch_size
        self.learning_rate = learning_rate
        self.reg = reg
        self.reg_bias = reg_bias
        self.init_std = init_std
        self.device = device
        self.seed = seed
        self.verbose = verbose

    def _prepare(self, train: Interactions) -> None:
        pop = np.bincount(train.matrix.indices, minlength=train.n_items)
        order = np.argsort(-pop, kind="stable")
        rank = np.empty(train.n_items, dtype=np.float64)
        rank[order] = np.arange(train.n_items)
        weights = np.exp(-(rank + 1) / (train.n_items * float(self.rho)))
        self._cdf = np.cumsum(weights)

    def _negatives(self, t, u, i, s_pos, score, rng):
        out = np.searchsorted(self._cdf, rng.random(len(u)) * self._cdf[-1], side="right")
        out = np.minimum(out, self.n_items_ - 1)
        for _ in range(50):
            bad = _contains(self._keys, u * self.n_items_ + out)
            if not bad.any():
                break
            out[bad] = np.minimum(np.searchsorted(self._cdf, rng.random(int(bad.sum())) * self._cdf[-1],
                                                  side="right"), self.n_items_ - 1)
        bad = _contains(self._keys, u * self.n_items_ + out)
        if bad.any():  # users who saw nearly every popular item: uniform over their unseen items
            out[bad] = self._uniform(u[bad], 1, rng)[:, 0]
        return out, np.ones(len(u))


@register
class LambdaFMDynamic(_LambdaFM):
    """LambdaFM with the dynamic sampler: the negative is picked among several uniform
    draws by its current score.

    For each pair, ``negatives`` unobserved items are drawn uniformly and sorted by the
    current score, best first; the item at position r is chosen with probability
    proportional to ``exp(-r / (rho * negatives))`` (a small ``rho`` picks the
    highest-scored draw, the hardest negative). Every pair has weight 1. See
    :class:`_LambdaFM` for the model, the loss and the mapping of JStarCraft's settings.

    Parameters
    ----------
    factors, epochs, batch_size, learning_rate, reg, reg_bias, init_std
        As in :class:`LambdaFMStatic`.
    negatives : int
        Uniform draws ranked per pair (m in the paper).
    rho : float
        Spread of the law over the ranked draws, as a share of ``negatives``.
    device, seed, verbose
        See :class:`~recseek.models.neural.multvae.MultVAE`.

    Reference: Yuan, Guo, Jose, Chen, Yu, Zhang, "LambdaFM: Learning Optimal Ranking with
    Factorization Machines Using Lambda Surrogates", CIKM 2016.
    """

    name = "LambdaFMDynamic"
    rules = {**_COMMON, "rho": Float(lo=0.0, lo_open=True), "negatives": Int(lo=1)}
    test_params = {"factors": 8, "epochs": 15, "batch_size": 256, "learning_rate": 0.05, "negatives": 5,
                   "device": "cpu"}

    def __init__(self, factors: int = 10, negatives: int = 10, rho: float = 0.1, epochs: int = 50,
                 batch_size: int = 256, learning_rate: float = 0.01, reg: float = 0.001, reg_bias: float = 0.001,
                 init_std: float = 0.1, device: str = "auto", seed: int | None = 0, verbose: bool = False) -> None:
        self.factors = factors
        self.negatives = negatives
        self.rho = rho
        self.epochs = epochs
        self.batch_size = batch_size
        self.learning_rate = learning_rate
        self.reg = reg
        self.reg_bias = reg_bias
        self.init_std = init_std
        self.device = device
        self.seed = seed
        self.verbose = verbose

    def _negatives(self, t, u, i, s_pos, score, rng):
        m = int(self.negatives)
        cand = self._uniform(u, m, rng)
        dev = s_pos.device
        s = score(t.from_numpy(u).to(dev), t.from_numpy(cand).to(dev)).cpu().numpy()
        order = np.argsort(-s, axis=1, kind="stable")
        law = np.exp(-np.arange(m) / (float(self.rho) * m))
        cdf = np.cumsum(law)
        pick = np.minimum(np.searchsorted(cdf, rng.random(len(u)) * cdf[-1], side="right"), m - 1)
        chosen = order[np.arange(len(u)), pick]
        return cand[np.arange(len(u)), chosen], np.ones(len(u))


@register
class LambdaFMWeight(_LambdaFM):
    """LambdaFM with the rank-aware weighting: uniform draws until one violates the margin.

    For a pair (u, i), unobserved items are drawn uniformly until one scores within
    ``margin`` of the positive (``s_uj > s_ui - margin``) or ``trials`` draws are
    spent (the last draw is used); with N draws and Y unobserved items of the user, the
    rank of the violator is estimated as ``floor((Y - 1) / N)`` and the pair is weighted
    by ``H(rank) / H(n_items - 1)`` (H the harmonic numbers), as in JStarCraft. See
    :class:`_LambdaFM` for the model, the loss and the mapping of JStarCraft's settings
    (``margin`` is JStarCraft's property of that name).

    Parameters
    ----------
    factors, epochs, batch_size, learning_rate, reg, reg_bias, init_std
        As in :class:`LambdaFMStatic`.
    margin : float
        Margin a negative must come within to count as a violation.
    trials : int
        Most uniform draws per pair (JStarCraft allows Y - 1; this bounds the cost).
    device, seed, verbose
        See :class:`~recseek.models.neural.multvae.MultVAE`.

    Reference: Yuan, Guo, Jose, Chen, Yu, Zhang, "LambdaFM: Learning Optimal Ranking with
    Factorization Machines Using Lambda Surrogates", CIKM 2016.
    """

    name = "LambdaFMWeight"
    rules = {**_COMMON, "margin": Float(), "trials": Int(lo=1)}
    test_params = {"factors": 8, "epochs": 15, "batch_size": 256, "learning_rate": 0.05, "trials": 20,
                   "device": "cpu"}

    def __init__(self, factors: int = 10, margin: float = 1.0, trials: int = 100, epochs: int = 30,
                 batch_size: int = 256, learning_rate: float = 0.01, reg: float = 0.001, reg_bias: float = 0.001,
                 init_std: float = 0.1, device: str = "auto", seed: int | None = 0, verbose: bool = False) -> None:
        self.factors = factors
        self.margin = margin
        self.trials = trials
        self.epochs = epochs
        self.batch_size = batch_size
        self.learning_rate = learning_rate
        self.reg = reg
        self.reg_bias = reg_bias
        self.init_std = init_std
        self.device = device
        self.seed = seed
        self.verbose = verbose

    def _prepare(self, train: Interactions) -> None:
        self._harmonic = np.concatenate([[0.0], np.cumsum(1.0 / np.arange(1, max(train.n_items, 2)))])
        self._unseen = train.n_items - np.diff(train.matrix.indptr)

    def _negatives(self, t, u, i, s_pos, score, rng):
        m = int(self.trials)
        cand = self._uniform(u, m, rng)
        dev = s_pos.device
        s = score(t.from_numpy(u).to(dev), t.from_numpy(cand).to(dev)).cpu().numpy()
        violates = s > s_pos.cpu().numpy()[:, None] - float(self.margin)
        y = self._unseen[u]
        limit = np.clip(y - 1, 1, m)
        first = np.where(violates.any(axis=1), violates.argmax(axis=1), m - 1)
        n = np.minimum(first + 1, limit)
        chosen = cand[np.arange(len(u)), n - 1]
        rank = np.maximum((y - 1) // n, 1)
        weight = self._harmonic[np.minimum(rank, len(self._harmonic) - 1)] / self._harmonic[-1]
        return chosen, weight
