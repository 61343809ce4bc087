"""AutoRec: the item-based autoencoder for rating prediction (Sedhain et al. 2015)."""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np
import scipy.sparse as sp

from ..._numba import pnjit, prange
from ...data._interactions import Interactions
from ...errors import DataError
from .._params import Int
from ..base import Array, RatingPredictor, StateSpec
from ..registry import register
from ._train import DEVICE_RULE, NeuralModel, sigmoid, train_epochs

#: Added to the diagonal of the fold-in's normal equations, so that ``reg = 0`` and users
#: with fewer ratings than hidden units still give one (minimum-norm-like) solution.
_FOLD_IN_JITTER = 1e-6


@pnjit
def decoder_fold_in(indptr, indices, data, codes, lam, jitter, empty_bias):  # pragma: no cover - numba
    """Per row u: ``argmin_{w, b} sum_j (r_j - w . codes[j] - b)^2 + lam |w|^2`` over its
    rated items j (the bias unpenalised), by the normal equations in float64."""
    n = indptr.shape[0] - 1
    d = codes.shape[1]
    dd = d + 1
    weights = np.zeros((n, d), dtype=np.float32)
    bias = np.full(n, empty_bias, dtype=np.float32)
    for u in prange(n):
        lo, hi = indptr[u], indptr[u + 1]
        if hi == lo:
            continue
        a = np.zeros((dd, dd), dtype=np.float64)
        rhs = np.zeros(dd, dtype=np.float64)
        x = np.empty(dd, dtype=np.float64)
        for p in range(lo, hi):
            j = indices[p]
            for f in range(d):
                x[f] = codes[j, f]
            x[d] = 1.0
            for r in range(dd):
                rhs[r] += x[r] * data[p]
                for c in range(r, dd):
                    a[r, c] += x[r] * x[c]
        for r in range(dd):
            for c in range(r):
                a[r, c] = a[c, r]
            a[r, r] += jitter
        for f in range(d):
            a[f, f] += lam
        sol = np.linalg.solve(a, rhs)
        for f in range(d):
            weights[u, f] = sol[f]
        bias[u] = sol[d]
    return weights, bias


def _build(t: Any, n_users: int, hidden: int) -> Any:
    nn = t.nn

    class AutoRecNet(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.encoder = nn.Linear(n_users, hidden)
            self.decoder = nn.Linear(hidden, n_users)

        def forward(self, r: Any) -> Any:
            return self.decoder(t.sigmoid(self.encoder(r)))

    return AutoRecNet()


@register
class AutoRec(NeuralModel, RatingPredictor):
    """I-AutoRec: each item's column of ratings over all users, encoded by one sigmoid
    layer and decoded linearly; the reconstruction is the predicted rating.

    ``h(r_i) = f(W g(V r_i + mu) + b)`` with ``g`` the sigmoid, ``f`` the identity and
    ``r_i`` in R^n_users the observed ratings of item ``i`` (0 where unobserved).
    Training minimises, over mini-batches of items (Adam)::

        sum_i sum_{u observed on i} (r_ui - h(r_i)_u)^2  +  reg / 2 (|W|^2 + |V|^2)

    the error only on observed ratings. The prediction of ``(u, i)`` is ``h(r_i)_u``.
    JStarCraft's properties map as ``recommender.hidden.dimension`` -> ``hidden_units``,
    ``recommender.iterator.maximum`` -> ``epochs``, ``recommender.iterator.learnrate`` ->
    ``learning_rate`` (momentum SGD there, Adam here), ``recommender.weight.regularization``
    -> ``reg``.

    Parameters
    ----------
    hidden_units : int
        Width of the hidden layer (500 in the paper, 200 in JStarCraft's settings).
    epochs, batch_size, learning_rate, reg : int, int, float, float
        Passes over the items, items per Adam step, Adam's step, L2 weight of W and V.
    device, seed, verbose
        See :class:`~recseek.models.neural.multvae.MultVAE`.

    The fitted model keeps each item's code ``h_i = g(V r_i + mu)`` and scores in numpy
    (``W[u] . h_i + b[u]``).

    Fold-in (:meth:`recommend_new`, :meth:`fold_in`). In I-AutoRec a user is two things
    the trained network lacks for a new user: an input coordinate of every item vector
    (a column ``v`` of ``V``) and an output unit (a row ``w`` of ``W`` and a bias ``b``).
    The trained autoencoders give no score for the new user at all, since the score is
    that output unit. The input column matters only through the items the user rated:
    an unrated item has ``r_ui = 0``, so its code ``g(V r_i + v r_ui + mu)`` is the
    trained ``h_i`` whatever ``v`` is, and every item the user can be recommended keeps
    its trained code. So recseek leaves ``v = 0`` (the new user changes no item's code,
    and the model stays as trained for everyone else) and fits the output unit alone,
    with everything else fixed, on the training objective restricted to that unit::

        (w, b) = argmin  sum_{i rated by u} (r_ui - w . h_i - b)^2  +  reg / 2 |w|^2

    a ridge regression on the item codes (the bias unpenalised, as in training), solved
    exactly by its normal equations (a numba kernel, one user per thread): closed form,
    so deterministic without a seed, and numpy/numba only, so a loaded model folds in
    without torch. For a training user's own ratings it gives the trained unit ``W[u],
    b[u]`` to the extent training converged (the trained unit minimises the same
    function with the same codes). Fitting ``v`` as well would only let the unit copy
    the user's ratings through their own codes, which unrated items (input 0) never see.
    ``values`` passed to :meth:`recommend_new` are the ratings (1.0 when omitted). With a
    small ``reg`` and fewer ratings than hidden units the solution is close to the
    minimum-norm fit of the user's ratings, so extreme scores are possible for such users;
    ``reg`` (the same weight as in training) controls it.

    Learned state: ``item_codes_`` (n_items, hidden), ``decoder_`` (n_users, hidden) W,
    ``decoder_bias_`` (n_users,) b.

    Reference: Sedhain, Menon, Sanner, Xie, "AutoRec: Autoencoders Meet Collaborative
    Filtering", WWW 2015 (companion).
    """

    name = "AutoRec"
    family = "neural"
    paper = ("Sedhain, Menon, Sanner, Xie. AutoRec: Autoencoders Meet Collaborative Filtering. "
             "WWW 2015 Companion")
    rules = {"hidden_units": Int(lo=1), "device": DEVICE_RULE}
    test_params = {"hidden_units": 16, "epochs": 40, "batch_size": 128, "learning_rate": 0.02, "device": "cpu"}
    state: ClassVar[dict[str, StateSpec]] = {
        "item_codes_": Array("float32", ("n_items", "hidden_units")),
        "decoder_": Array("float32", ("n_users", "hidden_units")),
        "decoder_bias_": Array("float32", ("n_users",)),
    }

    def __init__(
        self,
        hidden_units: int = 500,
        epochs: int = 100,
        batch_size: int = 64,
        learning_rate: float = 0.001,
        reg: float = 0.001,
        device: str = "auto",
        seed: int | None = 0,
        verbose: bool = False,
    ) -> None:
        self.hidden_units = hidden_units
        self.epochs = epochs
        self.batch_size = batch_size
        self.learning_rate = learning_rate
        self.reg = reg
        self.device = device
        self.seed = seed
        self.verbose = verbose

    def _fit(self, train: Interactions) -> None:
        t = self._torch()
        device = self._device()
        cols = sp.csr_array(sp.csr_array(train.matrix, dtype=np.float32).T)
        cols.sort_indices()
        active = np.flatnonzero(np.diff(cols.indptr) > 0)
        with self._seeded():
            net = _build(t, train.n_users, int(self.hidden_units)).to(device)
        opt = t.optim.Adam(net.parameters(), lr=float(self.learning_rate))
        reg = float(self.reg)

        def batch_loss(idx: Any, epoch: int) -> Any:
            items = active[idx.numpy()]
            block = cols[items]
            r = t.from_numpy(block.toarray()).to(device)
            mask = t.from_numpy((sp.csr_array((np.ones(block.nnz, np.float32), block.indices, block.indptr),
                                              shape=block.shape)).toarray()).to(device)
            err = ((net(r) - r) * mask).pow(2).sum()
            penalty = net.encoder.weight.pow(2).sum() + net.decoder.weight.pow(2).sum()
            # the penalty is spread over the batches of one pass
            share = len(items) / max(len(active), 1)
            return (err + reg / 2 * penalty * share) / len(items)

        train_epochs(self, net, opt, len(active), batch_loss, epochs=int(self.epochs),
                     batch_size=int(self.batch_size), generator=self._generator())
        v = net.encoder.weight.detach().cpu().numpy().astype(np.float32)
        mu = net.encoder.bias.detach().cpu().numpy().astype(np.float32)
        self.item_codes_ = np.ascontiguousarray(sigmoid(np.asarray(cols @ v.T, dtype=np.float32) + mu))
        self.decoder_ = np.ascontiguousarray(net.decoder.weight.detach().cpu().numpy().astype(np.float32))
        self.decoder_bias_ = net.decoder.bias.detach().cpu().numpy().astype(np.float32)
        self._check_finite(int(self.epochs), self.item_codes_, self.decoder_, self.decoder_bias_)

    def _score(self, users: np.ndarray, items: np.ndarray | None) -> np.ndarray:
        codes = self.item_codes_ if items is None else self.item_codes_[items]
        return (self.decoder_[users] @ codes.T + self.decoder_bias_[users, None]).astype(np.float32)

    def _predict(self, users: np.ndarray, items: np.ndarray) -> np.ndarray:
        return (np.einsum("nk,nk->n", self.decoder_[users], self.item_codes_[items])
                + self.decoder_bias_[users]).astype(np.float32)

    def fold_in(self, rows: sp.csr_array) -> tuple[np.ndarray, np.ndarray]:
        """``(decoder rows (n, hidden_units), decoder biases (n,))`` of new users from their
        rating rows (n, n_items): the output unit fitted to each row's ratings with the
        item codes fixed (see the class docstring). A row without ratings gets ``w = 0``
        and the global mean as bias."""
        self._check_fitted()
        rows = sp.csr_array(rows, dtype=np.float32)
        if rows.ndim != 2 or rows.shape[1] != self.n_items_:
            raise DataError(f"{self.display_name}: fold-in rows have {rows.shape[-1]} items, expected "
                            f"{self.n_items_}")
        rows.sum_duplicates()
        rows.sort_indices()
        if rows.nnz and not np.isfinite(rows.data).all():
            raise DataError(f"{self.display_name}: fold-in ratings must be finite numbers")
        return decoder_fold_in(np.asarray(rows.indptr, dtype=np.int64), np.asarray(rows.indices, dtype=np.int64),
                               np.asarray(rows.data, dtype=np.float64), self.item_codes_, float(self.reg) / 2.0,
                               _FOLD_IN_JITTER, np.float32(self.global_mean_))

    def _score_new(self, rows: sp.csr_array) -> np.ndarray:
        w, b = self.fold_in(rows)
        return (w @ self.item_codes_.T + b[:, None]).astype(np.float32)

    def item_vectors(self) -> np.ndarray:
        self._check_fitted()
        return self.item_codes_
