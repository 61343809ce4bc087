"""LightGCN: linear propagation of embeddings over the user-item graph (He et al. 2020)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, ClassVar

import numpy as np
import scipy.sparse as sp

from ..._numba import njit, pnjit, prange
from ...data._interactions import Interactions
from .._params import Int
from ..base import Array, Recommender, StateSpec
from ..registry import register
from ._lightgcn_kernels import PARALLEL_WORK, lightgcn_epoch
from ._train import (
    DEVICE_RULE,
    PATIENCE_RULE,
    NeuralModel,
    carve_validation,
    csr_to_torch,
    diverged,
    indptr_keys,
    run_epochs,
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
    where a numba product (wrapped as an autograd function; ``A`` is symmetric, so the
    gradient is ``A`` times the incoming gradient) is several times faster than torch's.
    """
    return propagate_layers(t, adj, ego, layers)[0]


def propagate_layers(t: Any, adj: Any, ego: Any, layers: int) -> tuple[Any, Any]:
    """``(mean of E^(0..K), sum of E^(0..K-1))``: the final embeddings and the sum of
    every layer but the last (what a folded-in user's embedding is built from)."""
    out = ego
    x = ego
    for _ in range(layers):
        x = _SparseProduct.get(t).apply(x, adj) if sp.issparse(adj) else t.sparse.mm(adj, x)
        out = out + x
    return out / (layers + 1), out - x if layers > 0 else out


@njit(fastmath=True, error_model="numpy")
def _spmm_rows(indptr: np.ndarray, indices: np.ndarray, data: np.ndarray, x: np.ndarray, out: np.ndarray,
               lo: int, hi: int) -> None:
    k = x.shape[1]
    acc = np.zeros(k, dtype=np.float32)
    for r in range(lo, hi):
        acc[:] = 0.0
        for p in range(indptr[r], indptr[r + 1]):
            c = indices[p]
            w = data[p]
            for j in range(k):
                acc[j] += w * x[c, j]
        out[r] = acc


@pnjit(fastmath=True, error_model="numpy")
def _spmm(indptr: np.ndarray, indices: np.ndarray, data: np.ndarray, x: np.ndarray) -> np.ndarray:
    """``A @ x`` for a CSR ``A`` (float32); rows in blocks over the threads (each output row
    is one thread's, so the result does not depend on the thread count)."""
    n = indptr.shape[0] - 1
    out = np.empty((n, x.shape[1]), dtype=np.float32)
    blocks = (n + 255) // 256
    for b in prange(blocks):
        _spmm_rows(indptr, indices, data, x, out, b * 256, min(n, (b + 1) * 256))
    return out


def sparse_product(a: sp.csr_array, x: np.ndarray) -> np.ndarray:
    """``a @ x`` for a float32 CSR matrix and a C-contiguous float32 array."""
    return _spmm(a.indptr, a.indices, a.data, np.ascontiguousarray(x, dtype=np.float32))


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
                    return t.from_numpy(sparse_product(a, x.detach().numpy()))

                @staticmethod
                def backward(ctx: Any, grad: Any) -> Any:
                    return t.from_numpy(sparse_product(ctx.a, grad.numpy())), None

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
    saved files need numpy only. New users are folded in by adding them to the graph
    (:meth:`fold_in`): their embedding is the propagation of their row through the
    training graph's item layers, without the free embedding they never trained.

    The defaults are the paper's (3 layers, 64 dimensions, Adam with step 1e-3, batches of
    2048 triples, reg 1e-4, initial deviation 0.1 as in the authors' PyTorch code).
    RecBole 1.2.1's LightGCN has 2 layers, reg 1e-5 on the unsquared norm of the batch's
    free embeddings, and Xavier-uniform initial embeddings.

    An epoch is one pass over the training pairs; each batch propagates the whole graph
    (one sparse product per layer with the normalised adjacency, built once) and back,
    and each epoch draws its negatives at once. On the CPU an epoch is one numba call
    (:mod:`recseek.models.neural._lightgcn_kernels`): the same loss, its exact gradient
    and torch's dense Adam over the whole embedding table, without torch's autograd
    between the sparse products (ML-100K with RecBole's settings, 20 epochs: about 3.5 s
    on one core; the torch loop took 7 s on one thread, 6 s on two idle ones).
    It runs on one thread unless a product exceeds ``PARALLEL_WORK`` multiply-adds
    (large graphs), and gives the same model on any number of threads.

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
    factors), the propagated embeddings; for the fold-in, ``item_layers_`` (n_items,
    factors), the sum ``e_i^(0) + ... + e_i^(K-1)`` of each item's layers but the last,
    and ``item_degree_`` (n_items,), the items' training degrees.

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
    #: Train on the CPU with the numba epoch kernel (``False``: torch's autograd and Adam,
    #: as on an accelerator; the same model up to rounding, several times slower).
    cpu_kernel: ClassVar[bool] = True
    state: ClassVar[dict[str, StateSpec]] = {
        "user_factors_": Array("float32", ("n_users", "factors")),
        "item_factors_": Array("float32", ("n_items", "factors")),
        "item_layers_": Array("float32", ("n_items", "factors")),
        "item_degree_": Array("float32", ("n_items",)),
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
        seen.sort_indices()
        adj_np = normalized_adjacency(seen)
        adj = adj_np if device.type == "cpu" else csr_to_torch(t, adj_np, device)
        n_users, n_items, k = train.n_users, train.n_items, int(self.factors)
        rng = self._numpy_rng()
        init = rng.standard_normal((n_users + n_items, k), dtype=np.float32) * np.float32(self.init_std)
        pos_u = np.repeat(np.arange(n_users, dtype=np.int64), np.diff(seen.indptr))
        pos_i = seen.indices.astype(np.int64) + n_users
        keys = indptr_keys(seen.indptr, seen.indices, n_items)
        layers, reg = int(self.graph_layers), float(self.reg)
        generator = self._generator()

        def draw_negatives() -> np.ndarray:  # one uniform negative per training pair, drawn once per epoch
            return n_users + sample_negatives(seen.indptr, seen.indices, pos_u, n_items, 1, rng, keys=keys)[:, 0]

        def validate_with(emb: np.ndarray) -> float:
            return validation_ndcg(lambda users: emb[users] @ emb[n_users:].T, fit, valid)

        if device.type == "cpu" and self.cpu_kernel:
            ego_np = self._train_cpu(adj_np, init, pos_u, pos_i, draw_negatives, generator,
                                     validate_with if valid is not None else None)
            ego = t.from_numpy(ego_np)
        else:
            ego = t.nn.Parameter(t.from_numpy(init).to(device))
            opt = t.optim.Adam([ego], lr=float(self.learning_rate))
            holder = t.nn.Module()
            holder.ego = ego
            negatives: dict[int, np.ndarray] = {}

            def batch_loss(idx: Any, epoch: int) -> Any:
                if epoch not in negatives:
                    negatives.clear()
                    negatives[epoch] = draw_negatives()
                b = idx.numpy()
                nodes = t.from_numpy(np.concatenate([pos_u[b], pos_i[b], negatives[epoch][b]])).to(device)
                emb = propagate(t, adj, ego, layers)
                eu, ei, ej = emb[nodes].view(3, len(b), k)
                loss = t.nn.functional.softplus((eu * (ej - ei)).sum(dim=1)).mean()
                penalty = ego[nodes].pow(2).sum() / (2 * len(b))
                return loss + reg * penalty

            def validate() -> float:
                return validate_with(propagate(t, adj, ego, layers).cpu().numpy())

            train_epochs(self, holder, opt, len(pos_u), batch_loss, epochs=int(self.epochs),
                         batch_size=int(self.batch_size), generator=generator,
                         validate=validate if valid is not None else None, patience=self.patience)
        with t.no_grad():
            final, inner = propagate_layers(t, adj, ego, layers)
            emb, inner = final.cpu().numpy().astype(np.float32), inner.cpu().numpy().astype(np.float32)
        self.user_factors_ = np.ascontiguousarray(emb[:n_users])
        self.item_factors_ = np.ascontiguousarray(emb[n_users:])
        self.item_layers_ = np.ascontiguousarray(inner[n_users:])
        self.item_degree_ = np.diff(sp.csr_array(seen.T).indptr).astype(np.float32)
        self._check_finite(int(self.epochs), self.user_factors_, self.item_factors_, self.item_layers_)

    # ------------------------------------------------------------ new users
    def fold_in(self, rows: sp.csr_array) -> np.ndarray:
        """Final embeddings (n, factors) of new users given their interaction rows (n, n_items).

        A new user ``v`` with items ``N_v`` joins the graph as a node of degree
        ``|N_v|``; its layer-``k+1`` embedding is ``sum_{i in N_v} e_i^(k) / sqrt(|N_v| d_i)``
        (``d_i`` the item's training degree, the item layers ``e_i^(k)`` those of the
        training graph: one more neighbour changes neither noticeably). Its free embedding
        ``e_v^(0)`` was never trained and is taken as its prior mean, zero, so::

            e_v = 1 / (K + 1) * sum_{i in N_v} (e_i^(0) + ... + e_i^(K-1)) / sqrt(|N_v| d_i)

        For a training user this is their trained embedding without its ``e_u^(0) / (K + 1)``
        term (exactly: the training graph's propagation is this sum plus that term).
        With ``graph_layers=0`` nothing propagates and a new user's embedding is zero.
        """
        self._check_fitted()
        x = sp.csr_array(rows, dtype=np.float32)
        x.data[:] = 1.0
        n = np.asarray(x.sum(axis=1)).ravel()
        inv_item = np.zeros_like(self.item_degree_)
        inv_item[self.item_degree_ > 0] = self.item_degree_[self.item_degree_ > 0] ** -0.5
        inv_user = np.zeros_like(n)
        inv_user[n > 0] = n[n > 0] ** -0.5
        weights = sp.diags_array(inv_user.astype(np.float32)) @ x @ sp.diags_array(inv_item)
        out = np.asarray(sp.csr_array(weights) @ self.item_layers_, dtype=np.float32)
        return out / np.float32(int(self.graph_layers) + 1)

    def _train_cpu(self, adj: sp.csr_array, init: np.ndarray, pos_u: np.ndarray, pos_i: np.ndarray,
                   draw_negatives: Callable[[], np.ndarray], generator: Any,
                   validate: Callable[[np.ndarray], float] | None) -> np.ndarray:
        """The training on the CPU: each epoch one numba call (:func:`lightgcn_epoch`: the
        same loss, gradient and Adam update as the torch path, the same batches)."""
        t = self._torch()
        ego = np.ascontiguousarray(init, dtype=np.float32)
        m, v = np.zeros_like(ego), np.zeros_like(ego)
        batch_size, layers = int(self.batch_size), int(self.graph_layers)
        steps = [0]
        # threads only for products big enough to pay for starting them at every layer of every step
        kernel = lightgcn_epoch.variant(parallel=adj.nnz * ego.shape[1] >= PARALLEL_WORK)

        def one_epoch(epoch: int) -> float:
            order = t.randperm(len(pos_u), generator=generator).numpy()
            negatives = draw_negatives()
            losses = kernel(adj.indptr, adj.indices, adj.data, ego, m, v, steps[0], pos_u, pos_i,
                                    negatives, order, batch_size, layers, float(self.reg),
                                    float(self.learning_rate), 0.9, 0.999, 1e-8)
            steps[0] += len(losses)
            bad = np.flatnonzero(~np.isfinite(losses))
            if bad.size:
                diverged(self, epoch, float(losses[bad[0]]))
            return float(losses.mean()) if losses.size else 0.0

        def scored() -> float:
            return validate(propagate_layers(t, adj, t.from_numpy(ego), layers)[0].numpy())  # type: ignore[misc]

        run_epochs(self, one_epoch, epochs=int(self.epochs), validate=scored if validate is not None else None,
                   patience=self.patience, snapshot=ego.copy, restore=lambda saved: ego.__setitem__(..., saved))
        return ego

    def _score_new(self, rows: sp.csr_array) -> np.ndarray:
        return (self.fold_in(rows) @ self.item_factors_.T).astype(np.float32)

    def _score(self, users: np.ndarray, items: np.ndarray | None) -> np.ndarray:
        v = self.item_factors_ if items is None else self.item_factors_[items]
        return (self.user_factors_[users] @ v.T).astype(np.float32)

    def item_vectors(self) -> np.ndarray:
        self._check_fitted()
        return self.item_factors_

    def user_vectors(self) -> np.ndarray:
        self._check_fitted()
        return self.user_factors_
