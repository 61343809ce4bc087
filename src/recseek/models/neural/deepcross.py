"""Deep Crossing: embeddings of the user and item fields through a stack of residual units (Shan et al. 2016)."""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np
import scipy.sparse as sp

from ...data._interactions import Interactions
from .._params import Float, Int
from ..base import Array, Recommender, StateSpec
from ..registry import register
from ._train import (
    DEVICE_RULE,
    PATIENCE_RULE,
    LayersRule,
    NeuralModel,
    carve_validation,
    layer_sizes,
    pack,
    sample_negatives,
    train_epochs,
    unpack,
    validation_ndcg,
)


def _unit_shapes(width: int, hidden: list[int]) -> list[tuple[int, ...]]:
    shapes: list[tuple[int, ...]] = []
    for h in hidden:
        shapes += [(h, width), (h,), (width, h), (width,)]
    return shapes + [(width,), (1,)]


def _build(t: Any, n_users: int, n_items: int, factors: int, hidden: list[int], dropout: float,
           init_std: float) -> Any:
    nn = t.nn
    width = 2 * factors

    class DeepCrossNet(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.user_emb = nn.Embedding(n_users, factors)
            self.item_emb = nn.Embedding(n_items, factors)
            nn.init.normal_(self.user_emb.weight, std=init_std)
            nn.init.normal_(self.item_emb.weight, std=init_std)
            self.inner = nn.ModuleList(nn.Linear(width, h) for h in hidden)
            self.outer = nn.ModuleList(nn.Linear(h, width) for h in hidden)
            self.drop = nn.Dropout(dropout)
            self.out = nn.Linear(width, 1)

        def forward(self, u: Any, i: Any) -> Any:
            x = t.cat([self.user_emb(u), self.item_emb(i)], dim=1)
            for a, b in zip(self.inner, self.outer, strict=True):
                x = self.drop(t.relu(x + b(t.relu(a(x)))))
            return self.out(x).squeeze(1)

    return DeepCrossNet()


@register
class DeepCross(NeuralModel, Recommender):
    """Deep Crossing on the user and item fields: stacked embeddings through residual units.

    The user and item embeddings are concatenated into ``x_0`` (the stacking layer); each
    residual unit maps ``x_{l+1} = relu(x_l + W2 relu(W1 x_l + b1) + b2)``, and the
    scoring layer gives ``y_ui = sigmoid(w . x_L + b)``. Training minimises the log loss
    of every training pair (label 1) and ``negatives`` uniform unobserved items per pair
    (label 0), redrawn each epoch (Adam, mini-batches).

    JStarCraft's properties map as ``recommender.iterator.maximum`` -> ``epochs``,
    ``recommender.iterator.learnrate`` -> ``learning_rate`` (momentum SGD there, Adam
    here), ``recommender.weight.regularization`` -> ``reg`` (Adam's weight decay).

    Parameters
    ----------
    factors : int
        Embedding dimension of each field (the stack is ``2 factors`` wide).
    mlp_layers : list of int
        Hidden width of each residual unit, one unit per entry.
    negatives, dropout, epochs, batch_size, learning_rate, reg, init_std
        As in :class:`~recseek.models.neural.deepfm.DeepFM`.
    patience, device, seed, verbose
        See :class:`~recseek.models.neural.multvae.MultVAE`.

    Scoring runs the residual stack in numpy over every (user, item) pair of a block
    (no torch needed after fitting); the model does not reduce to embeddings.

    Learned state: ``user_factors_`` / ``item_factors_`` (n, factors) and ``units_``,
    the weights of the residual units and the scoring layer as one flat array.

    Reference: Shan, Hoens, Jiao, Wang, Yu, Mao, "Deep Crossing: Web-Scale Modeling
    without Manually Crafted Combinatorial Features", KDD 2016.
    """

    name = "DeepCross"
    family = "neural"
    paper = ("Shan, Hoens, Jiao, Wang, Yu, Mao. Deep Crossing: Web-Scale Modeling without Manually Crafted "
             "Combinatorial Features. KDD 2016")
    rules = {"mlp_layers": LayersRule(), "dropout": Float(lo=0.0, hi=0.99), "negatives": Int(lo=1),
             "patience": PATIENCE_RULE, "device": DEVICE_RULE}
    test_params = {"factors": 8, "mlp_layers": [16], "epochs": 15, "batch_size": 1024, "learning_rate": 0.05,
                   "negatives": 2, "device": "cpu"}
    state: ClassVar[dict[str, StateSpec]] = {
        "user_factors_": Array("float32", ("n_users", "factors")),
        "item_factors_": Array("float32", ("n_items", "factors")),
        "units_": Array("float32", ("n_units",)),
    }

    def __init__(
        self,
        factors: int = 32,
        mlp_layers: list[int] | tuple[int, ...] = (64, 64),
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

    def _shapes(self) -> list[tuple[int, ...]]:
        return _unit_shapes(2 * int(self.factors), layer_sizes(self.display_name, "mlp_layers", self.mlp_layers))

    def check_state(self, params: dict[str, np.ndarray], history: bool = True) -> None:
        super().check_state(params, history)
        unpack(np.asarray(params["units_"]), self._shapes(), self.display_name, "units_")

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
        self._check_finite(int(self.epochs), self.user_factors_, self.item_factors_, self.units_)

    def _store(self, net: Any) -> None:
        self.user_factors_ = np.ascontiguousarray(net.user_emb.weight.detach().cpu().numpy().astype(np.float32))
        self.item_factors_ = np.ascontiguousarray(net.item_emb.weight.detach().cpu().numpy().astype(np.float32))
        parts = []
        for a, b in zip(net.inner, net.outer, strict=True):
            parts += [a.weight, a.bias, b.weight, b.bias]
        self.units_ = pack([*parts, net.out.weight[0], net.out.bias])

    def _score(self, users: np.ndarray, items: np.ndarray | None) -> np.ndarray:
        items = np.arange(self.n_items_) if items is None else items
        weights = unpack(self.units_, self._shapes(), self.display_name, "units_")
        w_out, b_out = weights[-2], weights[-1]
        pu, qi = self.user_factors_[users], self.item_factors_[items]
        k = pu.shape[1]
        out = np.empty((len(users), len(items)), dtype=np.float32)
        step = max(1, (1 << 21) // max(len(items) * 2 * k, 1))
        for start in range(0, len(users), step):
            ub = pu[start:start + step]
            x = np.concatenate([np.repeat(ub, len(items), axis=0), np.tile(qi, (len(ub), 1))], axis=1)
            for layer in range(0, len(weights) - 2, 4):
                w1, b1, w2, b2 = weights[layer:layer + 4]
                x = np.maximum(x + np.maximum(x @ w1.T + b1, 0) @ w2.T + b2, 0)
            out[start:start + step] = (x @ w_out + b_out[0]).reshape(len(ub), len(items))
        return out
