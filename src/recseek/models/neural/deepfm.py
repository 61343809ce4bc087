"""DeepFM: a factorization machine and a deep network sharing one embedding (Guo et al. 2017)."""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np
import scipy.sparse as sp

from ...data._interactions import Interactions
from .._params import Float, Int
from ..base import Array, Recommender, Scalar, StateSpec
from ..registry import register
from ._train import (
    DEVICE_RULE,
    PATIENCE_RULE,
    LayersRule,
    NeuralModel,
    carve_validation,
    layer_sizes,
    mlp_shapes,
    pack,
    pair_tower,
    sample_negatives,
    train_epochs,
    unpack,
    validation_ndcg,
)


def _build(t: Any, n_users: int, n_items: int, factors: int, layers: list[int], dropout: float,
           init_std: float) -> Any:
    nn = t.nn

    class DeepFMNet(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.user_emb = nn.Embedding(n_users, factors)
            self.item_emb = nn.Embedding(n_items, factors)
            self.user_w = nn.Embedding(n_users, 1)
            self.item_w = nn.Embedding(n_items, 1)
            for e in (self.user_emb, self.item_emb):
                nn.init.normal_(e.weight, std=init_std)
            for e in (self.user_w, self.item_w):
                nn.init.zeros_(e.weight)
            self.bias = nn.Parameter(t.zeros(1))
            sizes = [2 * factors, *layers]
            self.deep = nn.ModuleList(nn.Linear(a, b) for a, b in zip(sizes[:-1], sizes[1:], strict=True))
            self.drop = nn.Dropout(dropout)
            self.out = nn.Linear(layers[-1], 1, bias=False)

        def forward(self, u: Any, i: Any) -> Any:
            vu, vi = self.user_emb(u), self.item_emb(i)
            fm = self.bias + self.user_w(u).squeeze(1) + self.item_w(i).squeeze(1) + (vu * vi).sum(dim=1)
            x = t.cat([vu, vi], dim=1)
            for layer in self.deep:
                x = self.drop(t.relu(layer(x)))
            return fm + self.out(x).squeeze(1)

    return DeepFMNet()


@register
class DeepFM(NeuralModel, Recommender):
    """DeepFM on the user and item fields: a factorization machine and a ReLU network over
    the same embeddings, summed before the sigmoid.

    With one-hot user and item fields the FM part is ``w0 + w_u + w_i + <v_u, v_i>``
    and the deep part ``MLP([v_u ; v_i])``; ``y_ui = sigmoid(FM + deep)``. Training
    minimises the log loss of every training pair (label 1) and ``negatives`` uniform
    unobserved items per pair (label 0), redrawn each epoch (Adam, mini-batches), with
    Adam's L2 weight decay ``reg``.

    JStarCraft's properties map as ``recommender.iterator.maximum`` -> ``epochs``,
    ``recommender.iterator.learnrate`` -> ``learning_rate`` (JStarCraft's optimiser is
    momentum SGD, Adam here), ``recommender.weight.regularization`` -> ``reg``.

    Parameters
    ----------
    factors : int
        Embedding dimension shared by the FM and the deep part.
    mlp_layers : list of int
        Widths of the hidden ReLU layers of the deep part.
    negatives : int
        Unobserved items sampled per training pair and epoch.
    dropout : float
        Dropout after each hidden layer.
    epochs, batch_size, learning_rate, reg, init_std
        Passes, pairs per Adam step, Adam's step, weight decay, std of the initial
        embeddings.
    patience, device, seed, verbose
        See :class:`~recseek.models.neural.multvae.MultVAE`.

    Scoring runs in numpy: the FM part is a biased dot product and the first deep
    layer splits into a user and an item half.

    Learned state: ``user_factors_`` / ``item_factors_`` (n, factors), ``user_bias_`` /
    ``item_bias_`` (n,), ``global_bias_``, ``deep_`` (flat hidden-layer weights) and
    ``output_`` (mlp_layers[-1],).

    Reference: Guo, Tang, Ye, Li, He, "DeepFM: A Factorization-Machine based Neural
    Network for CTR Prediction", IJCAI 2017.
    """

    name = "DeepFM"
    family = "neural"
    paper = ("Guo, Tang, Ye, Li, He. DeepFM: A Factorization-Machine based Neural Network for CTR "
             "Prediction. IJCAI 2017")
    rules = {"mlp_layers": LayersRule(), "dropout": Float(lo=0.0, hi=0.99), "negatives": Int(lo=1),
             "patience": PATIENCE_RULE, "device": DEVICE_RULE}
    test_params = {"factors": 8, "mlp_layers": [16], "epochs": 15, "batch_size": 1024, "learning_rate": 0.05,
                   "negatives": 2, "device": "cpu"}
    state: ClassVar[dict[str, StateSpec]] = {
        "user_factors_": Array("float32", ("n_users", "factors")),
        "item_factors_": Array("float32", ("n_items", "factors")),
        "user_bias_": Array("float32", ("n_users",)),
        "item_bias_": Array("float32", ("n_items",)),
        "global_bias_": Scalar(float),
        "deep_": Array("float32", ("n_deep",)),
        "output_": Array("float32", ("n_output",)),
    }

    def __init__(
        self,
        factors: int = 32,
        mlp_layers: list[int] | tuple[int, ...] = (64, 32),
        negatives: int = 4,
        dropout: float = 0.0,
        epochs: int = 20,
        batch_size: int = 1024,
        learning_rate: float = 0.001,
        reg: float = 0.0,
        init_std: float = 0.01,
        patience: int | None = None,
        device: str = "auto",
        seed: int | None = 0,
        verbose: bool = False,
    ) -> None:
        self.factors = factors
        self.mlp_layers = mlp_layers
        self.negatives = negatives
        self.dropout = dropout
        self.epochs = epochs
        self.batch_size = batch_size
        self.learning_rate = learning_rate
        self.reg = reg
        self.init_std = init_std
        self.patience = patience
        self.device = device
        self.seed = seed
        self.verbose = verbose

    def _deep_shapes(self) -> list[tuple[int, ...]]:
        return mlp_shapes([2 * int(self.factors), *layer_sizes(self.display_name, "mlp_layers", self.mlp_layers)])

    def check_state(self, params: dict[str, np.ndarray], history: bool = True) -> None:
        super().check_state(params, history)
        unpack(np.asarray(params["deep_"]), self._deep_shapes(), self.display_name, "deep_")
        unpack(np.asarray(params["output_"]), [(layer_sizes(self.display_name, "mlp_layers", self.mlp_layers)[-1],)],
               self.display_name, "output_")

    def _fit(self, train: Interactions) -> None:
        t = self._torch()
        device = self._device()
        fit, valid = (carve_validation(train, self.seed) if self.patience is not None else (train, None))
        seen = sp.csr_array(fit.matrix)
        with self._seeded():
            net = _build(t, train.n_users, train.n_items, int(self.factors),
                         layer_sizes(self.display_name, "mlp_layers", self.mlp_layers), float(self.dropout),
                         float(self.init_std)).to(device)
        opt = t.optim.Adam(net.parameters(), lr=float(self.learning_rate), weight_decay=float(self.reg))
        rng = self._numpy_rng()
        pos_u = np.repeat(np.arange(train.n_users, dtype=np.int64), np.diff(seen.indptr))
        pos_i = seen.indices.astype(np.int64)
        n_neg = int(self.negatives)
        bce = t.nn.functional.binary_cross_entropy_with_logits

        def batch_loss(idx: Any, epoch: int) -> Any:
            b = idx.numpy()
            u, i = pos_u[b], pos_i[b]
            j = sample_negatives(seen.indptr, seen.indices, u, train.n_items, n_neg, rng)
            users = np.concatenate([u, np.repeat(u, n_neg)])
            items = np.concatenate([i, j.ravel()])
            labels = np.concatenate([np.ones(len(u), np.float32), np.zeros(j.size, np.float32)])
            logits = net(t.from_numpy(users).to(device), t.from_numpy(items).to(device))
            return bce(logits, t.from_numpy(labels).to(device))

        def validate() -> float:
            self._store(net)
            return validation_ndcg(lambda users: self._score(users, None), fit, valid)

        train_epochs(self, net, opt, len(pos_u), batch_loss, epochs=int(self.epochs),
                     batch_size=max(1, int(self.batch_size) // (n_neg + 1)), generator=self._generator(),
                     validate=validate if valid is not None else None, patience=self.patience)
        self._store(net)
        self._check_finite(int(self.epochs), self.user_factors_, self.item_factors_, self.user_bias_,
                           self.item_bias_, self.deep_, self.output_)

    def _store(self, net: Any) -> None:
        def arr(x: Any) -> np.ndarray:
            return np.ascontiguousarray(x.detach().cpu().numpy().astype(np.float32))

        self.user_factors_, self.item_factors_ = arr(net.user_emb.weight), arr(net.item_emb.weight)
        self.user_bias_, self.item_bias_ = arr(net.user_w.weight[:, 0]), arr(net.item_w.weight[:, 0])
        self.global_bias_ = float(net.bias.detach().cpu()[0])
        parts = []
        for layer in net.deep:
            parts += [layer.weight, layer.bias]
        self.deep_ = pack(parts)
        self.output_ = pack([net.out.weight[0]])

    def _score(self, users: np.ndarray, items: np.ndarray | None) -> np.ndarray:
        items = np.arange(self.n_items_) if items is None else items
        k = int(self.factors)
        weights = unpack(self.deep_, self._deep_shapes(), self.display_name, "deep_")
        w1, b1 = weights[0], weights[1]
        pu, qi = self.user_factors_[users], self.item_factors_[items]
        deep = pair_tower(pu @ w1[:, :k].T + b1, qi @ w1[:, k:].T, weights[2:], self.output_)
        fm = pu @ qi.T + self.user_bias_[users, None] + self.item_bias_[None, items] + self.global_bias_
        return (fm + deep).astype(np.float32)
