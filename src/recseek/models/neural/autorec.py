"""AutoRec: the item-based autoencoder for rating prediction (Sedhain et al. 2015)."""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np
import scipy.sparse as sp

from ...data._interactions import Interactions
from .._params import Int
from ..base import Array, RatingPredictor, StateSpec
from ..registry import register
from ._train import DEVICE_RULE, NeuralModel, sigmoid, train_epochs


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

    Users are output units, so a user outside the training data cannot be folded in;
    the fitted model keeps each item's code ``g(V r_i + mu)`` and scores in numpy
    (``W[u] . code_i + b[u]``).

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

    def item_vectors(self) -> np.ndarray:
        self._check_fitted()
        return self.item_codes_
