"""NeuMF: generalised matrix factorisation fused with an MLP (He et al. 2017)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, ClassVar

import numpy as np
import scipy.sparse as sp

from ..._numba import njit
from ...data._interactions import Interactions
from .._params import Float, Int
from ..base import Array, Recommender, StateSpec
from ..registry import register
from ._adam import adam_entry
from ._train import (
    DEVICE_RULE,
    PATIENCE_RULE,
    LayersRule,
    NeuralModel,
    carve_validation,
    diverged,
    indptr_keys,
    layer_sizes,
    mlp_shapes,
    pack,
    pair_tower,
    run_epochs,
    sample_negatives,
    seen_mask,
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


# ---------------------------------------------------------------- CPU kernels
# An Adam step on the CPU without torch's autograd: the first layer's products (the
# batch's item rows and, once per user, the user rows, times the layer's two halves, and
# their transposes for the gradient) are single-threaded torch matrix products; the rest of
# each pair's forward and backward pass (ReLU, the deeper layers, GMF, the output layer,
# the log loss) is fused in numba, and so are the scatter of the rows' gradients into the
# tables and torch's Adam (``weight_decay`` as L2 added to the gradient). torch spends most
# of a CPU step on allocating and streaming a few hundred kilobytes per intermediate
# tensor between those products. Tested against torch's autograd and Adam. Towers whose
# hidden layers would drop units (``dropout > 0`` with more than one hidden layer) train
# with torch.


@njit(fastmath=True, error_model="numpy")
def _adam_flat(param: np.ndarray, grad: np.ndarray, m: np.ndarray, v: np.ndarray, weight_decay: np.float32,
               beta1: np.float32, beta2: np.float32, step_size: np.float32, bc2_sqrt: np.float32,
               eps: np.float32) -> None:
    """torch's Adam on a flat parameter (L2 ``weight_decay`` added to the gradient); the
    gradient is zeroed for the next step."""
    for n in range(param.shape[0]):
        g = grad[n] + weight_decay * param[n]
        param[n], m[n], v[n] = adam_entry(param[n], g, m[n], v[n], beta1, beta2, step_size, bc2_sqrt, eps)
        grad[n] = 0.0


@njit(fastmath=True, error_model="numpy")
def _neumf_head(ug: np.ndarray, ig: np.ndarray, mlp: np.ndarray, out: np.ndarray, sizes: np.ndarray,
                users: np.ndarray, items: np.ndarray, zu: np.ndarray, zi: np.ndarray, dz: np.ndarray,
                dzu: np.ndarray, g_ug: np.ndarray, g_ig: np.ndarray, g_mlp: np.ndarray, g_out: np.ndarray) -> float:
    """Mean log loss of the pairs ``(users[p], items[g, p])`` (label 1 for ``g = 0``, else
    0) given the first layer's pre-activations ``zu[p] + zi[g * P + p]`` (``zu`` with the
    bias); writes the gradient of those pre-activations into ``dz`` (per pair) and ``dzu``
    (summed per user), adds the rest of the gradient into ``g_*`` (all zero on entry)."""
    k = ug.shape[1]
    n_layers = sizes.shape[0] - 1
    widest = 0
    for layer in range(1, n_layers + 1):
        widest = max(widest, sizes[layer])
    w_at = np.empty(n_layers, dtype=np.int64)  # offsets of each layer's (out, in) weight and bias
    b_at = np.empty(n_layers, dtype=np.int64)
    pos = 0
    for layer in range(n_layers):
        w_at[layer] = pos
        pos += sizes[layer + 1] * sizes[layer]
        b_at[layer] = pos
        pos += sizes[layer + 1]
    h1, last = sizes[1], sizes[n_layers]
    groups, n_pos = items.shape
    scale = 1.0 / (groups * n_pos)
    bias = out[k + last]
    act = np.zeros((n_layers + 1, widest), dtype=np.float32)  # act[l]: output of layer l (1-based)
    delta = np.zeros(widest, dtype=np.float32)
    below = np.zeros(widest, dtype=np.float32)
    dug = np.zeros(k, dtype=np.float32)
    total = 0.0
    for p in range(n_pos):
        u = users[p]
        for r in range(h1):
            dzu[p, r] = 0.0
        for d in range(k):
            dug[d] = 0.0
        for g in range(groups):
            i = items[g, p]
            row = g * n_pos + p
            first, zu_row, zi_row = act[1], zu[p], zi[row]
            for r in range(h1):
                z = zu_row[r] + zi_row[r]
                first[r] = z if z > 0 else np.float32(0.0)
            for layer in range(1, n_layers):
                n_in, n_out = sizes[layer], sizes[layer + 1]
                for r in range(n_out):
                    acc = mlp[b_at[layer] + r]
                    base = w_at[layer] + r * n_in
                    for c in range(n_in):
                        acc += mlp[base + c] * act[layer, c]
                    act[layer + 1, r] = acc if acc > 0 else 0.0
            x = bias
            for d in range(k):
                x += out[d] * ug[u, d] * ig[i, d]
            top = act[n_layers]
            for c in range(last):
                x += out[k + c] * top[c]
            label = 1.0 if g == 0 else 0.0
            # log loss of a logit: max(x, 0) - x y + log(1 + e^-|x|); its derivative sigmoid(x) - y
            e = np.exp(-abs(x))
            total += max(x, 0.0) - x * label + np.log1p(e)
            sig = 1.0 / (1.0 + e) if x >= 0 else e / (1.0 + e)
            dl = np.float32((sig - label) * scale)
            user_g, item_g = ug[u], ig[i]
            for d in range(k):
                g_out[d] += dl * user_g[d] * item_g[d]
            grad_item = g_ig[i]
            for d in range(k):
                grad_item[d] += dl * out[d] * user_g[d]
            for d in range(k):
                dug[d] += dl * out[d] * item_g[d]
            for c in range(last):
                g_out[k + c] += dl * top[c]
            for c in range(last):
                delta[c] = dl * out[k + c] if top[c] > 0 else np.float32(0.0)
            g_out[k + last] += dl
            for layer in range(n_layers - 1, 0, -1):  # delta: gradient of layer+1's pre-activation
                n_in, n_out = sizes[layer], sizes[layer + 1]
                for c in range(n_in):
                    below[c] = 0.0
                for r in range(n_out):
                    dr = delta[r]
                    base = w_at[layer] + r * n_in
                    g_mlp[b_at[layer] + r] += dr
                    for c in range(n_in):
                        g_mlp[base + c] += dr * act[layer, c]
                        below[c] += dr * mlp[base + c]
                for c in range(n_in):
                    delta[c] = below[c] if act[layer, c] > 0 else 0.0
            dz_row, dzu_row = dz[row], dzu[p]
            for r in range(h1):
                dz_row[r] = delta[r]
            for r in range(h1):
                dzu_row[r] += delta[r]
        dzu_row = dzu[p]
        for r in range(h1):
            g_mlp[b_at[0] + r] += dzu_row[r]
        grad_user = g_ug[u]
        for d in range(k):
            grad_user[d] += dug[d]
    return total * scale


@njit(fastmath=True, error_model="numpy")
def _scatter_rows(grad: np.ndarray, rows: np.ndarray, values: np.ndarray) -> None:
    """``grad[rows[n]] += values[n]`` for every n, in order."""
    for n in range(rows.shape[0]):
        r = rows[n]
        for c in range(grad.shape[1]):
            grad[r, c] += values[n, c]


@njit(error_model="numpy")
def _scatter_and_adam(params: tuple, grads: tuple, firsts: tuple, seconds: tuple, users: np.ndarray,
                      items: np.ndarray, d_um: np.ndarray, d_im: np.ndarray, step: int, lr: float,
                      weight_decay: float) -> None:
    """The first layer's gradient rows into the MLP tables, then Adam's step ``step`` on
    ``params`` = (ug, um, ig, im, mlp, out), whose gradients ``grads`` are then zeroed."""
    _scatter_rows(grads[1], users, d_um)
    _scatter_rows(grads[3], items, d_im)
    bc1 = 1.0 - 0.9 ** step
    bc2_sqrt = np.sqrt(1.0 - 0.999 ** step)
    args = (np.float32(weight_decay), np.float32(0.9), np.float32(0.999), np.float32(lr / bc1),
            np.float32(bc2_sqrt), np.float32(1e-8))
    _adam_flat(params[0].reshape(-1), grads[0].reshape(-1), firsts[0].reshape(-1), seconds[0].reshape(-1), *args)
    _adam_flat(params[1].reshape(-1), grads[1].reshape(-1), firsts[1].reshape(-1), seconds[1].reshape(-1), *args)
    _adam_flat(params[2].reshape(-1), grads[2].reshape(-1), firsts[2].reshape(-1), seconds[2].reshape(-1), *args)
    _adam_flat(params[3].reshape(-1), grads[3].reshape(-1), firsts[3].reshape(-1), seconds[3].reshape(-1), *args)
    _adam_flat(params[4], grads[4], firsts[4], seconds[4], *args)
    _adam_flat(params[5], grads[5], firsts[5], seconds[5], *args)


def _neumf_step(t: Any, params: tuple, grads: tuple, firsts: tuple, seconds: tuple, sizes: np.ndarray,
                users: np.ndarray, items: np.ndarray, step: int, lr: float, weight_decay: float) -> float:
    """One Adam step on the batch (``items`` (groups, P): row 0 the positives of
    ``users``, the other rows their negatives); returns the batch's loss. ``grads`` are
    zero on entry and on return."""
    ug, um, ig, im, mlp, out = params
    half, h1 = um.shape[1], int(sizes[1])
    w1 = t.from_numpy(mlp[:h1 * 2 * half].reshape(h1, 2 * half))
    w1u, w1i = w1[:, :half], w1[:, half:]
    flat = items.reshape(-1)
    user_rows = t.from_numpy(um[users])
    item_rows = t.from_numpy(im[flat])
    zu = t.addmm(t.from_numpy(mlp[h1 * 2 * half:h1 * 2 * half + h1]), user_rows, w1u.T)
    zi = t.mm(item_rows, w1i.T)
    dz = np.empty((flat.shape[0], h1), dtype=np.float32)
    dzu = np.empty((users.shape[0], h1), dtype=np.float32)
    loss = _neumf_head(ug, ig, mlp, out, sizes, users, items, zu.numpy(), zi.numpy(), dz, dzu, grads[0], grads[2],
                       grads[4], grads[5])
    dz_t, dzu_t = t.from_numpy(dz), t.from_numpy(dzu)
    g_w1 = t.from_numpy(grads[4][:h1 * 2 * half].reshape(h1, 2 * half))
    g_w1[:, :half] = t.mm(dzu_t.T, user_rows)
    g_w1[:, half:] = t.mm(dz_t.T, item_rows)
    d_um, d_im = t.mm(dzu_t, w1u).numpy(), t.mm(dz_t, w1i).numpy()
    _scatter_and_adam(params, grads, firsts, seconds, users, flat, d_um, d_im, step, lr, weight_decay)
    return float(loss)


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

    A batch is laid out as its positives and, below each, its negatives, so each user's
    rows and its half of the first layer are computed once per batch (the same loss and
    gradient as pair by pair). On the CPU a step runs without torch's autograd: the first
    layer's matrix products in torch, the rest of the forward and backward pass, the
    scatter into the tables and torch's Adam fused in numba (the same update; ML-100K,
    8 epochs of RecBole's settings: about 1.6 s instead of 3.5 s on one core). Towers that
    drop units between hidden layers (``dropout > 0`` with more than one hidden layer)
    train with torch's autograd and fused Adam.

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
    #: Train on the CPU with the numba step (``False``: torch's autograd and Adam, as on an
    #: accelerator; the same model up to rounding, several times slower).
    cpu_kernel: ClassVar[bool] = True
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
        rng = self._numpy_rng()
        pos_u = np.repeat(np.arange(train.n_users, dtype=np.int64), np.diff(seen.indptr))
        pos_i = seen.indices.astype(np.int64)
        mask = seen_mask(seen.indptr, seen.indices, train.n_items)
        keys = indptr_keys(seen.indptr, seen.indices, train.n_items) if mask is None else None
        n_neg = int(self.negatives)
        # a batch holds batch_size pairs: positives with their negatives
        pos_per_batch = max(1, int(self.batch_size) // (n_neg + 1))
        generator = self._generator()

        def batch_items(b: np.ndarray) -> np.ndarray:
            """(1 + negatives, len(b)): row 0 the batch's positive items, rows 1.. their
            negatives, one user per column."""
            j = sample_negatives(seen.indptr, seen.indices, pos_u[b], train.n_items, n_neg, rng, keys=keys,
                                 mask=mask)
            return np.ascontiguousarray(np.concatenate([pos_i[b][None], j.T]))

        def validate() -> float:
            return validation_ndcg(lambda users: self._score(users, None), fit, valid)

        with_kernel = self.cpu_kernel and (float(self.dropout) == 0.0 or len(sizes) <= 2)
        if device.type == "cpu" and with_kernel:
            self._store(net)  # the seeded initial weights, trained in place
            self._train_cpu(pos_u, batch_items, pos_per_batch, generator, validate if valid is not None else None)
        else:
            self._train_torch(net, device, pos_u, batch_items, pos_per_batch, generator,
                              validate if valid is not None else None)
            self._store(net)
        self._check_finite(int(self.epochs), self.user_gmf_, self.item_gmf_, self.user_mlp_, self.item_mlp_,
                           self.mlp_, self.output_)

    def _train_cpu(self, pos_u: np.ndarray, batch_items: Callable[[np.ndarray], np.ndarray], pos_per_batch: int,
                   generator: Any, validate: Callable[[], float] | None) -> None:
        """numba Adam steps on the state arrays (:func:`_neumf_step`), the torch path's batches."""
        t = self._torch()
        params = (self.user_gmf_, self.user_mlp_, self.item_gmf_, self.item_mlp_, self.mlp_, self.output_)
        grads = tuple(np.zeros_like(p) for p in params)
        firsts = tuple(np.zeros_like(p) for p in params)
        seconds = tuple(np.zeros_like(p) for p in params)
        sizes = self._sizes()
        widths = np.array([2 * (sizes[0] // 2), *sizes[1:]], dtype=np.int64)
        lr, weight_decay = float(self.learning_rate), float(self.reg)
        steps = [0]

        def one_epoch(epoch: int) -> float:
            order = t.randperm(len(pos_u), generator=generator).numpy()
            total, batches = 0.0, 0
            for start in range(0, len(order), pos_per_batch):
                b = order[start:start + pos_per_batch]
                items = batch_items(b)
                steps[0] += 1
                loss = _neumf_step(t, params, grads, firsts, seconds, widths, pos_u[b], items, steps[0], lr,
                                   weight_decay)
                if not np.isfinite(loss):
                    diverged(self, epoch, loss)
                total += loss
                batches += 1
            return total / max(batches, 1)

        def restore(saved: list[np.ndarray]) -> None:
            for p, value in zip(params, saved, strict=True):
                p[...] = value

        run_epochs(self, one_epoch, epochs=int(self.epochs), validate=validate, patience=self.patience,
                   snapshot=lambda: [p.copy() for p in params], restore=restore)

    def _train_torch(self, net: Any, device: Any, pos_u: np.ndarray, batch_items: Callable[[np.ndarray], np.ndarray],
                     pos_per_batch: int, generator: Any, validate: Callable[[], float] | None) -> None:
        t = self._torch()
        # fused Adam: one kernel per tensor instead of a dozen (the same update)
        fused = {"fused": True} if device.type in ("cpu", "cuda") else {}
        opt = t.optim.Adam(net.parameters(), lr=float(self.learning_rate), weight_decay=float(self.reg), **fused)
        bce = t.nn.functional.binary_cross_entropy_with_logits
        labels = t.zeros(int(self.negatives) + 1, pos_per_batch, device=device)
        labels[0] = 1.0

        def batch_loss(idx: Any, epoch: int) -> Any:
            b = idx.numpy()
            items = t.from_numpy(batch_items(b)).to(device)
            logits = net.grouped(t.from_numpy(pos_u[b]).to(device), items)
            return bce(logits, labels[:, :len(b)])

        def checked() -> float:
            self._store(net)
            return validate()  # type: ignore[misc]

        train_epochs(self, net, opt, len(pos_u), batch_loss, epochs=int(self.epochs), batch_size=pos_per_batch,
                     generator=generator, validate=checked if validate is not None else None,
                     patience=self.patience)

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
