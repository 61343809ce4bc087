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
    indptr_keys,
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
    functional = t.nn.functional

    class NeuMFNet(nn.Module):
        """Each side's GMF and MLP embeddings are one table (``user`` and ``item``, GMF
        columns first), so a batch gathers two tables and its gradient scatters into two;
        Adam being element-wise, that is the same optimisation as four separate tables."""

        def __init__(self) -> None:
            super().__init__()
            half = layers[0] // 2
            self.half = half
            tables = [nn.Embedding(n, width) for n, width in
                      ((n_users, factors), (n_items, factors), (n_users, half), (n_items, half))]
            for e in tables:
                nn.init.normal_(e.weight, std=init_std)
            self.user = nn.Parameter(t.cat([tables[0].weight.data, tables[2].weight.data], dim=1))
            self.item = nn.Parameter(t.cat([tables[1].weight.data, tables[3].weight.data], dim=1))
            self.first = nn.Linear(2 * half, layers[1])
            self.tower = nn.ModuleList(nn.Linear(a, b) for a, b in zip(layers[1:-1], layers[2:], strict=True))
            self.drop = nn.Dropout(dropout)
            self.out = nn.Linear(factors + layers[-1], 1)

        def head(self, user: Any, item: Any, user_first: Any) -> Any:
            """Logits from gathered rows: ``user`` (..., factors + half) broadcast against
            ``item``, and ``user_first``, the user half of the first layer (bias included)."""
            k, half = factors, self.half
            x = t.relu(functional.linear(item[..., k:], self.first.weight[:, half:]) + user_first)
            for layer in self.tower:
                x = t.relu(layer(self.drop(x)))
            w = self.out.weight[0]
            return (user[..., :k] * item[..., :k]) @ w[:k] + x @ w[k:] + self.out.bias[0]

        def user_first(self, user: Any) -> Any:
            return functional.linear(user[..., factors:], self.first.weight[:, :self.half], self.first.bias)

        def forward(self, u: Any, i: Any) -> Any:
            """Logits of the pairs ``(u[n], i[n])``."""
            user = functional.embedding(u, self.user)
            return self.head(user, functional.embedding(i, self.item), self.user_first(user))

        def grouped(self, u: Any, items: Any) -> Any:
            """Logits (groups, len(u)) of each user ``u[p]`` with each item ``items[g, p]``:
            the user's rows and its half of the first layer computed once per user."""
            user = functional.embedding(u, self.user)
            return self.head(user, functional.embedding(items, self.item), self.user_first(user))

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
        # fused Adam: one kernel per table instead of a dozen per tensor (the same update)
        fused = {"fused": True} if device.type in ("cpu", "cuda") else {}
        opt = t.optim.Adam(net.parameters(), lr=float(self.learning_rate), weight_decay=float(self.reg), **fused)
        rng = self._numpy_rng()
        pos_u = np.repeat(np.arange(train.n_users, dtype=np.int64), np.diff(seen.indptr))
        pos_i = seen.indices.astype(np.int64)
        keys = indptr_keys(seen.indptr, seen.indices, train.n_items)
        n_neg = int(self.negatives)
        per = n_neg + 1
        bce = t.nn.functional.binary_cross_entropy_with_logits
        # a batch holds batch_size pairs: positives with their negatives
        pos_per_batch = max(1, int(self.batch_size) // per)
        labels = t.zeros(per, pos_per_batch, device=device)
        labels[0] = 1.0
        users = t.from_numpy(pos_u).to(device)
        epoch_items: dict[int, Any] = {}

        def batch_loss(idx: Any, epoch: int) -> Any:
            if epoch not in epoch_items:  # every pair's negatives drawn at the epoch's start, in one call
                epoch_items.clear()
                j = sample_negatives(seen.indptr, seen.indices, pos_u, train.n_items, n_neg, rng, keys=keys)
                epoch_items[epoch] = t.from_numpy(np.ascontiguousarray(np.column_stack([pos_i, j]).T)).to(device)
            b = idx.to(device)
            # row 0 the positives, rows 1.. their negatives: one user per column
            logits = net.grouped(users[b], epoch_items[epoch][:, b])
            return bce(logits, labels[:, :len(b)])

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

        k = int(self.factors)
        user, item = arr(net.user), arr(net.item)
        self.user_gmf_, self.item_gmf_ = np.ascontiguousarray(user[:, :k]), np.ascontiguousarray(item[:, :k])
        self.user_mlp_, self.item_mlp_ = np.ascontiguousarray(user[:, k:]), np.ascontiguousarray(item[:, k:])
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
