"""CDAE: the collaborative denoising autoencoder (Wu et al. 2016)."""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np
import scipy.sparse as sp

from ...data._interactions import Interactions
from ...errors import ParameterError
from .._params import Choice, Float, Int
from ..base import Array, Recommender, StateSpec
from ..registry import register
from ._train import (
    DEVICE_RULE,
    PATIENCE_RULE,
    NeuralModel,
    carve_validation,
    sigmoid,
    train_epochs,
    validation_ndcg,
)

_ACTIVATIONS = ("sigmoid", "relu", "tanh", "identity")


def _act(t: Any, name: str) -> Any:
    return {"sigmoid": t.sigmoid, "relu": t.relu, "tanh": t.tanh, "identity": lambda x: x}[name]


def _np_act(name: str, x: np.ndarray) -> np.ndarray:
    if name == "sigmoid":
        return sigmoid(x)
    if name == "relu":
        return np.maximum(x, 0)
    if name == "tanh":
        return np.tanh(x)
    return x


def _build(t: Any, n_users: int, n_items: int, hidden: int, corruption: float, activation: str) -> Any:
    nn = t.nn

    class CDAENet(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.drop = nn.Dropout(corruption)
            self.encoder = nn.Linear(n_items, hidden)
            self.user_nodes = nn.Embedding(n_users, hidden)
            nn.init.normal_(self.user_nodes.weight, std=0.01)
            self.decoder = nn.Linear(hidden, n_items)

        def hidden_of(self, x: Any, users: Any) -> Any:
            return _act(t, activation)(self.encoder(self.drop(x)) + self.user_nodes(users))

        def forward(self, x: Any, users: Any) -> Any:
            return self.decoder(self.hidden_of(x, users))

    return CDAENet()


@register
class CDAE(NeuralModel, Recommender):
    """Collaborative denoising autoencoder: a user's corrupted row plus a user node, encoded
    to one hidden layer and decoded back to every item.

    ``z_u = h(W^T y~_u + V_u + b)`` with ``y~_u`` the binary row with each entry dropped
    with probability ``corruption`` (survivors scaled by ``1 / (1 - corruption)``) and
    ``V_u`` a learned vector per user; ``y^_u = f(W' z_u + b')``. Training minimises the
    loss between ``y^_u`` and the uncorrupted row over every item of the catalogue
    (the paper's full-row variant, no negative sampling), plus ``reg / 2`` times the
    squared norm of all weights (Adam's weight decay), over mini-batches of users.

    Parameters
    ----------
    hidden_units : int
        Width of the hidden layer (``recommender.hidden.dimension``, 200 in JStarCraft).
    corruption : float
        Drop-out probability of input entries (q in the paper).
    activation : {"sigmoid", "relu", "tanh", "identity"}
        The hidden activation h (``recommender.hidden.activation``).
    loss : {"logistic", "square"}
        Log loss on the output logits (the paper's best for top-N; the output mapping f
        is then the sigmoid) or squared error with an identity output (JStarCraft's
        ``recommender.output.activation=identity``).
    epochs, batch_size, learning_rate, reg : int, int, float, float
        Passes over the users (``recommender.iterator.maximum``), users per Adam step,
        Adam's step and the L2 weight (``recommender.weight.regularization``).
        JStarCraft trains with momentum SGD (``learnrate`` 0.1, ``momentum`` 0.9); Adam
        takes their place here.
    patience, device, seed, verbose
        See :class:`~recseek.models.neural.multvae.MultVAE`.

    The fitted model keeps each training user's hidden code ``z_u`` (no corruption),
    so scoring is ``W' z_u + b'`` in numpy; a new user is folded in with ``V_u = 0``.

    Learned state: ``encoder_`` (n_items, hidden) W, ``encoder_bias_`` (hidden,),
    ``user_nodes_`` (n_users, hidden) V, ``decoder_`` (n_items, hidden) W',
    ``decoder_bias_`` (n_items,), ``user_hidden_`` (n_users, hidden) the codes z_u.

    Reference: Wu, DuBois, Zheng, Ester, "Collaborative Denoising Auto-Encoders for Top-N
    Recommender Systems", WSDM 2016.
    """

    name = "CDAE"
    family = "neural"
    paper = ("Wu, DuBois, Zheng, Ester. Collaborative Denoising Auto-Encoders for Top-N Recommender "
             "Systems. WSDM 2016")
    rules = {"hidden_units": Int(lo=1), "corruption": Float(lo=0.0, hi=0.99), "activation": Choice(_ACTIVATIONS),
             "loss": Choice(("logistic", "square")), "patience": PATIENCE_RULE, "device": DEVICE_RULE}
    test_params = {"hidden_units": 16, "epochs": 20, "batch_size": 32, "learning_rate": 0.01, "device": "cpu"}
    state: ClassVar[dict[str, StateSpec]] = {
        "encoder_": Array("float32", ("n_items", "hidden_units")),
        "encoder_bias_": Array("float32", ("hidden_units",)),
        "user_nodes_": Array("float32", ("n_users", "hidden_units")),
        "decoder_": Array("float32", ("n_items", "hidden_units")),
        "decoder_bias_": Array("float32", ("n_items",)),
        "user_hidden_": Array("float32", ("n_users", "hidden_units")),
    }

    def __init__(
        self,
        hidden_units: int = 200,
        corruption: float = 0.2,
        activation: str = "sigmoid",
        loss: str = "logistic",
        epochs: int = 100,
        batch_size: int = 64,
        learning_rate: float = 0.001,
        reg: float = 0.0,
        patience: int | None = None,
        device: str = "auto",
        seed: int | None = 0,
        verbose: bool = False,
    ) -> None:
        self.hidden_units = hidden_units
        self.corruption = corruption
        self.activation = activation
        self.loss = loss
        self.epochs = epochs
        self.batch_size = batch_size
        self.learning_rate = learning_rate
        self.reg = reg
        self.patience = patience
        self.device = device
        self.seed = seed
        self.verbose = verbose

    def _fit(self, train: Interactions) -> None:
        t = self._torch()
        device = self._device()
        binary = train.binarize()
        fit, valid = (carve_validation(binary, self.seed) if self.patience is not None else (binary, None))
        rows = sp.csr_array(fit.matrix)
        active = np.flatnonzero(np.diff(rows.indptr) > 0)
        with self._seeded():
            net = _build(t, train.n_users, train.n_items, int(self.hidden_units), float(self.corruption),
                         self.activation).to(device)
        opt = t.optim.Adam(net.parameters(), lr=float(self.learning_rate), weight_decay=float(self.reg))
        logistic = self.loss == "logistic"

        def batch_loss(idx: Any, epoch: int) -> Any:
            users = active[idx.numpy()]
            x = t.from_numpy(rows[users].toarray()).to(device)
            out = net(x, t.from_numpy(users).to(device))
            if logistic:
                return t.nn.functional.binary_cross_entropy_with_logits(out, x, reduction="sum") / len(users)
            return (out - x).pow(2).sum() / len(users)

        def validate() -> float:
            def score(users: np.ndarray) -> np.ndarray:
                x = t.from_numpy(rows[users].toarray()).to(device)
                return net(x, t.from_numpy(users).to(device)).cpu().numpy()

            return validation_ndcg(score, fit, valid)

        with self._seeded():
            train_epochs(self, net, opt, len(active), batch_loss, epochs=int(self.epochs),
                         batch_size=int(self.batch_size), generator=self._generator(),
                         validate=validate if valid is not None else None, patience=self.patience)

        def arr(x: Any) -> np.ndarray:
            return np.ascontiguousarray(x.detach().cpu().numpy().astype(np.float32))

        self.encoder_ = arr(net.encoder.weight.T)
        self.encoder_bias_ = arr(net.encoder.bias)
        self.user_nodes_ = arr(net.user_nodes.weight)
        self.decoder_ = arr(net.decoder.weight)
        self.decoder_bias_ = arr(net.decoder.bias)
        full = sp.csr_array(binary.matrix)
        self.user_hidden_ = self._hidden(full, self.user_nodes_)
        self._check_finite(int(self.epochs), self.encoder_, self.user_nodes_, self.decoder_, self.user_hidden_)

    def check_params(self) -> None:
        super().check_params()
        if self.activation not in _ACTIVATIONS:
            raise ParameterError(f"{self.display_name}: activation must be one of {', '.join(_ACTIVATIONS)}")

    def _hidden(self, rows: sp.csr_array, user_nodes: np.ndarray | float) -> np.ndarray:
        x = sp.csr_array(rows, dtype=np.float32)
        x.data[:] = 1.0
        pre = np.asarray(x @ self.encoder_, dtype=np.float32) + self.encoder_bias_ + user_nodes
        return np.ascontiguousarray(_np_act(self.activation, pre).astype(np.float32))

    def _score(self, users: np.ndarray, items: np.ndarray | None) -> np.ndarray:
        w = self.decoder_ if items is None else self.decoder_[items]
        b = self.decoder_bias_ if items is None else self.decoder_bias_[items]
        return (self.user_hidden_[users] @ w.T + b).astype(np.float32)

    def _score_new(self, rows: sp.csr_array) -> np.ndarray:
        z = self._hidden(rows, 0.0)
        return (z @ self.decoder_.T + self.decoder_bias_).astype(np.float32)

    def item_vectors(self) -> np.ndarray:
        self._check_fitted()
        return self.decoder_
