"""LightGCN: linear propagation of embeddings over the user-item graph (He et al. 2020)."""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np
import scipy.sparse as sp

from ...data._interactions import Interactions
from .._params import Int
from ..base import Array, Recommender, StateSpec
from ..registry import register
from ._train import (
    DEVICE_RULE,
    PATIENCE_RULE,
    NeuralModel,
    carve_validation,
    csr_to_torch,
    sample_negatives,
    train_epochs,
    validation_ndcg,
)


def normalized_adjacency(seen: sp.csr_array) -> sp.csr_array:
    """``D^-1/2 A D^-1/2`` of the bipartite graph ``A = [[0, R], [R^T, 0]]`` (users first)."""
    n_users, n_items = seen.shape
    r = sp.csr_array(seen, dtype=np.float32)
    a = sp.block_array([[None, r], [r.T, None]], format="csr", dtype=np.float32)
    a = sp.csr_array(a)
    deg = np.asarray(a.sum(axis=1)).ravel()
    inv = np.zeros_like(deg)
    inv[deg > 0] = deg[deg > 0] ** -0.5
    d = sp.diags_array(inv.astype(np.float32))
    out = sp.csr_array(d @ a @ d)
    out.sort_indices()
    return out


def propagate(t: Any, adj: Any, ego: Any, layers: int) -> Any:
    """Mean of ``ego, A ego, ..., A^layers ego`` (the LightGCN layer combination, a_k = 1 / (K + 1)).

    ``adj`` is a torch sparse tensor on an accelerator, or a scipy CSR matrix for the CPU,
    where scipy's product (wrapped as an autograd function; ``A`` is symmetric, so the
    gradient is ``A`` times the incoming gradient) is many times faster than torch's.
    """
    out = ego
    x = ego
    for _ in range(layers):
        x = _SparseProduct.get(t).apply(x, adj) if sp.issparse(adj) else t.sparse.mm(adj, x)
        out = out + x
    return out / (layers + 1)


class _SparseProduct:
    """``A @ x`` for a symmetric scipy matrix ``A`` as a torch autograd function (built once)."""

    _fn: Any = None

    @classmethod
    def get(cls, t: Any) -> Any:
        if cls._fn is None:
            class Product(t.autograd.Function):
                @staticmethod
                def forward(ctx: Any, x: Any, a: Any) -> Any:
                    ctx.a = a
                    return t.from_numpy(np.asarray(a @ x.detach().numpy(), dtype=np.float32))

                @staticmethod
                def backward(ctx: Any, grad: Any) -> Any:
                    return t.from_numpy(np.asarray(ctx.a @ grad.numpy(), dtype=np.float32)), None

            cls._fn = Product
        return cls._fn


@register
class LightGCN(NeuralModel, Recommender):
    """LightGCN: user and item embeddings smoothed over the interaction graph, trained with BPR.

    With ``E^(0)`` the free embeddings of users and items and ``A`` the symmetrically
    normalised adjacency of the user-item graph, each layer is ``E^(k+1) = A E^(k)``
    (no weights, no non-linearity) and the final embedding is the mean
    ``E = (E^(0) + ... + E^(K)) / (K + 1)``. The score is ``e_u . e_i``. Training
    minimises over mini-batches of (user, positive, uniform negative) triples, one per
    training interaction and epoch (Adam)::

        -ln sigmoid(e_u . e_i - e_u . e_j) + reg / 2 (|e0_u|^2 + |e0_i|^2 + |e0_j|^2) / batch

    the penalty on the free embeddings of the batch, as in the paper's code.

    The fitted model reduces to the final embeddings: scoring, ``similar_items`` and
    saved files need numpy only. New users cannot be folded in (their embedding would
    change the graph normalisation of every neighbour).

    Parameters
    ----------
    factors : int
        Embedding dimension (64).
    graph_layers : int
        Propagation layers K (3 in the paper; RecBole's default is 2).
    epochs, batch_size, learning_rate : int, int, float
        Passes over the interactions, triples per Adam step, Adam's step.
    reg : float
        Weight of the L2 penalty on the batch's free embeddings (1e-4).
    init_std : float
        Standard deviation of the initial embeddings (0.1; the paper's code uses
        Xavier's, about the same at these sizes).
    patience : int, optional
        Early stopping on a tenth of each user's training items (validation NDCG@10).
    device, seed, verbose
        See :class:`~recseek.models.neural.multvae.MultVAE`.

    Learned state: ``user_factors_`` (n_users, factors), ``item_factors_`` (n_items,
    factors), the propagated embeddings.

    Reference: He, Deng, Wang, Li, Zhang, Wang, "LightGCN: Simplifying and Powering
    Graph Convolution Network for Recommendation", SIGIR 2020.
    """

    name = "LightGCN"
    family = "neural"
    paper = ("He, Deng, Wang, Li, Zhang, Wang. LightGCN: Simplifying and Powering Graph Convolution Network "
             "for Recommendation. SIGIR 2020")
    rules = {"graph_layers": Int(lo=0), "patience": PATIENCE_RULE, "device": DEVICE_RULE}
    test_params = {"factors": 16, "graph_layers": 2, "epochs": 10, "batch_size": 1024, "learning_rate": 0.05,
                   "device": "cpu"}
    state: ClassVar[dict[str, StateSpec]] = {
        "user_factors_": Array("float32", ("n_users", "factors")),
        "item_factors_": Array("float32", ("n_items", "factors")),
    }

    def __init__(
        self,
        factors: int = 64,
        graph_layers: int = 3,
        epochs: int = 100,
        batch_size: int = 2048,
        learning_rate: float = 0.001,
        reg: float = 1e-4,
        init_std: float = 0.1,
        patience: int | None = None,
        device: str = "auto",
        seed: int | None = 0,
        verbose: bool = False,
    ) -> None:
        self.factors = factors
        self.graph_layers = graph_layers
        self.epochs = epochs
        self.batch_size = batch_size
        self.learning_rate = learning_rate
        self.reg = reg
        self.init_std = init_std
        self.patience = patience
        self.device = device
        self.seed = seed
        self.verbose = verbose

    def _fit(self, train: Interactions) -> None:
        t = self._torch()
        device = self._device()
        fit, valid = (carve_validation(train, self.seed) if self.patience is not None else (train, None))
        seen = sp.csr_array((np.ones(fit.nnz, dtype=np.float32), fit.matrix.indices, fit.matrix.indptr),
                            shape=fit.shape)
        adj_np = normalized_adjacency(seen)
        adj = adj_np if device.type == "cpu" else csr_to_torch(t, adj_np, device)
        n_users, n_items, k = train.n_users, train.n_items, int(self.factors)
        rng = self._numpy_rng()
        init = rng.standard_normal((n_users + n_items, k), dtype=np.float32) * np.float32(self.init_std)
        ego = t.nn.Parameter(t.from_numpy(init).to(device))
        opt = t.optim.Adam([ego], lr=float(self.learning_rate))
        pos_u = np.repeat(np.arange(n_users, dtype=np.int64), np.diff(seen.indptr))
        pos_i = seen.indices.astype(np.int64)
        layers, reg = int(self.graph_layers), float(self.reg)
        holder = t.nn.Module()
        holder.ego = ego

        def batch_loss(idx: Any, epoch: int) -> Any:
            b = idx.numpy()
            u, i = pos_u[b], pos_i[b]
            j = sample_negatives(seen.indptr, seen.indices, u, n_items, 1, rng)[:, 0]
            emb = propagate(t, adj, ego, layers)
            tu = t.from_numpy(u).to(device)
            ti = t.from_numpy(i + n_users).to(device)
            tj = t.from_numpy(j + n_users).to(device)
            eu, ei, ej = emb[tu], emb[ti], emb[tj]
            diff = (eu * (ei - ej)).sum(dim=1)
            loss = t.nn.functional.softplus(-diff).mean()
            penalty = (ego[tu].pow(2).sum() + ego[ti].pow(2).sum() + ego[tj].pow(2).sum()) / (2 * len(b))
            return loss + reg * penalty

        def validate() -> float:
            emb = propagate(t, adj, ego, layers).cpu().numpy()
            return validation_ndcg(lambda users: emb[users] @ emb[n_users:].T, fit, valid)

        train_epochs(self, holder, opt, len(pos_u), batch_loss, epochs=int(self.epochs),
                     batch_size=int(self.batch_size), generator=self._generator(),
                     validate=validate if valid is not None else None, patience=self.patience)
        with t.no_grad():
            emb = propagate(t, adj, ego, layers).cpu().numpy().astype(np.float32)
        self.user_factors_ = np.ascontiguousarray(emb[:n_users])
        self.item_factors_ = np.ascontiguousarray(emb[n_users:])
        self._check_finite(int(self.epochs), self.user_factors_, self.item_factors_)

    def _score(self, users: np.ndarray, items: np.ndarray | None) -> np.ndarray:
        v = self.item_factors_ if items is None else self.item_factors_[items]
        return (self.user_factors_[users] @ v.T).astype(np.float32)

    def item_vectors(self) -> np.ndarray:
        self._check_fitted()
        return self.item_factors_

    def user_vectors(self) -> np.ndarray:
        self._check_fitted()
        return self.user_factors_
