"""NeuMF: generalised matrix factorisation fused with an MLP (He et al. 2017)."""

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

    class NeuMFNet(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            half = layers[0] // 2
            self.user_gmf = nn.Embedding(n_users, factors)
            self.item_gmf = nn.Embedding(n_items, factors)
            self.user_mlp = nn.Embedding(n_users, half)
            self.item_mlp = nn.Embedding(n_items, half)
            for e in (self.user_gmf, self.item_gmf, self.user_mlp, self.item_mlp):
                nn.init.normal_(e.weight, std=init_std)
            self.first = nn.Linear(2 * half, layers[1])
            self.tower = nn.ModuleList(nn.Linear(a, b) for a, b in zip(layers[1:-1], layers[2:], strict=True))
            self.drop = nn.Dropout(dropout)
            self.out = nn.Linear(factors + layers[-1], 1)

        def forward(self, u: Any, i: Any) -> Any:
            gmf = self.user_gmf(u) * self.item_gmf(i)
            x = t.relu(self.first(t.cat([self.user_mlp(u), self.item_mlp(i)], dim=1)))
            for layer in self.tower:
                x = t.relu(layer(self.drop(x)))
            return self.out(t.cat([gmf, x], dim=1)).squeeze(1)

    return NeuMFNet()


@register
class NeuMF(NeuralModel, Recommender):
    """Neural matrix factorisation: a GMF branch and an MLP branch fused by one output layer.

    ``y_ui = sigmoid(h . [p_u * q_i ; MLP([p'_u ; q'_i])] + b)``: the GMF branch is the
    element-wise product of ``factors``-dimensional embeddings, the MLP branch a ReLU
    tower over the concatenation of two further embeddings of ``mlp_layers[0] / 2``
    dimensions each. Training minimises the log loss of every training pair (label 1)
    and of ``negatives`` uniform unobserved items per pair (label 0), redrawn each epoch
    (Adam, mini-batches).

    Parameters
    ----------
    factors : int
        GMF embedding dimension (the paper's predictive factors).
    mlp_layers : list of int
        MLP widths: ``mlp_layers[0]`` is the concatenated embedding width (each side gets
        half), then the hidden layers (default ``[128, 64]`` as RecBole's, the paper's
        towers halve at each layer).
    negatives : int
        Unobserved items sampled per training pair and epoch (4 in the paper).
    dropout : float
        Dropout between the hidden MLP layers.
    epochs, batch_size, learning_rate, reg : int, int, float, float
        Passes, pairs (positive or negative) per Adam step, Adam's step and its L2 weight
        decay.
    init_std : float
        Standard deviation of the normal initial embeddings (0.01 in the paper).
    patience, device, seed, verbose
        See :class:`~recseek.models.neural.multvae.MultVAE`.

    The GMF branch reduces to a dot product and the first MLP layer splits into a user
    and an item half, so scoring runs in numpy (no torch needed after fitting), but the
    model does not reduce to one embedding per user and item.

    Learned state: ``user_gmf_`` / ``item_gmf_`` (n, factors), ``user_mlp_`` /
    ``item_mlp_`` (n, mlp_layers[0] / 2), ``mlp_`` (flat MLP weights) and ``output_``
    (flat output weights, GMF part first).

    Reference: He, Liao, Zhang, Nie, Hu, Chua, "Neural Collaborative Filtering", WWW 2017.
    """

    name = "NeuMF"
    family = "neural"
    paper = "He, Liao, Zhang, Nie, Hu, Chua. Neural Collaborative Filtering. WWW 2017"
    rules = {"mlp_layers": LayersRule(), "dropout": Float(lo=0.0, hi=0.99), "patience": PATIENCE_RULE,
             "device": DEVICE_RULE, "negatives": Int(lo=1)}
    test_params = {"factors": 8, "mlp_layers": [16, 8], "epochs": 8, "batch_size": 2048, "learning_rate": 0.02,
                   "negatives": 2, "device": "cpu"}
    state: ClassVar[dict[str, StateSpec]] = {
        "user_gmf_": Array("float32", ("n_users", "factors")),
        "item_gmf_": Array("float32", ("n_items", "factors")),
        "user_mlp_": Array("float32", ("n_users", "mlp_width")),
        "item_mlp_": Array("float32", ("n_items", "mlp_width")),
        "mlp_": Array("float32", ("n_mlp",)),
        "output_": Array("float32", ("n_output",)),
    }

    def __init__(
        self,
        factors: int = 64,
        mlp_layers: list[int] | tuple[int, ...] = (128, 64),
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

    def _sizes(self) -> list[int]:
        sizes = layer_sizes(self.display_name, "mlp_layers", self.mlp_layers)
        return sizes if len(sizes) > 1 else sizes * 2

    def _mlp_shapes(self) -> list[tuple[int, ...]]:
        sizes = self._sizes()
        return mlp_shapes([2 * (sizes[0] // 2), *sizes[1:]])

    def check_params(self) -> None:
        super().check_params()
        if self._sizes()[0] < 2:
            from ...errors import ParameterError

            raise ParameterError(f"{self.display_name}: mlp_layers[0] must be at least 2 (it is split between "
                                 "the user and the item embedding)")

    def check_state(self, params: dict[str, np.ndarray], history: bool = True) -> None:
        super().check_state(params, history)
        unpack(np.asarray(params["mlp_"]), self._mlp_shapes(), self.display_name, "mlp_")
        unpack(np.asarray(params["output_"]), [(int(self.factors) + self._sizes()[-1],), (1,)],
               self.display_name, "output_")

    def _fit(self, train: Interactions) -> None:
        t = self._torch()
        device = self._device()
        fit, valid = (carve_validation(train, self.seed) if self.patience is not None else (train, None))
        seen = sp.csr_array(fit.matrix)
        sizes = self._sizes()
        with self._seeded():
            net = _build(t, train.n_users, train.n_items, int(self.factors), sizes, float(self.dropout),
                         float(self.init_std)).to(device)
        opt = t.optim.Adam(net.parameters(), lr=float(self.learning_rate), weight_decay=float(self.reg))
        rng = self._numpy_rng()
        pos_u = np.repeat(np.arange(train.n_users, dtype=np.int64), np.diff(seen.indptr))
        pos_i = seen.indices.astype(np.int64)
        n_neg = int(self.negatives)
        per = n_neg + 1
        bce = t.nn.functional.binary_cross_entropy_with_logits
        # a batch holds batch_size pairs: positives with their negatives
        pos_per_batch = max(1, int(self.batch_size) // per)

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

        train_epochs(self, net, opt, len(pos_u), batch_loss, epochs=int(self.epochs), batch_size=pos_per_batch,
                     generator=self._generator(), validate=validate if valid is not None else None,
                     patience=self.patience)
        self._store(net)
        self._check_finite(int(self.epochs), self.user_gmf_, self.item_gmf_, self.user_mlp_, self.item_mlp_,
                           self.mlp_, self.output_)

    def _store(self, net: Any) -> None:
        def arr(x: Any) -> np.ndarray:
            return np.ascontiguousarray(x.detach().cpu().numpy().astype(np.float32))

        self.user_gmf_, self.item_gmf_ = arr(net.user_gmf.weight), arr(net.item_gmf.weight)
        self.user_mlp_, self.item_mlp_ = arr(net.user_mlp.weight), arr(net.item_mlp.weight)
        layers = [net.first.weight, net.first.bias]
        for layer in net.tower:
            layers += [layer.weight, layer.bias]
        self.mlp_ = pack(layers)
        self.output_ = pack([net.out.weight[0], net.out.bias])

    def _score(self, users: np.ndarray, items: np.ndarray | None) -> np.ndarray:
        items = np.arange(self.n_items_) if items is None else items
        k = int(self.factors)
        h, bias = unpack(self.output_, [(k + self._sizes()[-1],), (1,)], self.display_name, "output_")
        weights = unpack(self.mlp_, self._mlp_shapes(), self.display_name, "mlp_")
        w1, b1 = weights[0], weights[1]
        half = self.user_mlp_.shape[1]
        user_part = self.user_mlp_[users] @ w1[:, :half].T + b1
        item_part = self.item_mlp_[items] @ w1[:, half:].T
        mlp = pair_tower(user_part, item_part, weights[2:], h[k:])
        gmf = (self.user_gmf_[users] * h[:k]) @ self.item_gmf_[items].T
        return (gmf + mlp + bias[0]).astype(np.float32)
