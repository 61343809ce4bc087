"""The training loop and helpers shared by the torch models of ``recseek.models.neural``.

Not a framework: each model builds its own ``torch.nn.Module`` and loss, and calls
:func:`train_epochs` with a function giving the loss of one mini-batch. What lives here:

- :class:`NeuralModel`: the ``device`` / ``seed`` / ``verbose`` plumbing of every neural
  model (seeded weight initialisation on the CPU, so that a seed gives the same start on
  every device; batches and negatives drawn from a CPU generator, so that the sequence of
  batches does not depend on the device either);
- :func:`train_epochs`: shuffled mini-batches, a progress bar per epoch with the mean
  loss (silent with ``verbose=False``), a clear :class:`~recseek.errors.TrainingError`
  naming the model and the epoch when the loss stops being finite, and early stopping on
  a validation split (best weights restored);
- :func:`carve_validation` / :func:`validation_ndcg`: the validation split carved from the
  training data (a share of each user's items, at random) and NDCG@10 on it;
- :func:`sample_negatives`: uniform negatives, rejected while the user interacted with them;
- :func:`pack` / :func:`unpack`: weights of layer stacks saved as one flat float32 array, so
  that saved models stay npz + JSON and numpy can score them without torch.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import numpy as np
import scipy.sparse as sp

from ...data._interactions import Interactions
from ...errors import ModelFileError, ParameterError, TrainingError
from .._params import Int

__all__ = [
    "DEVICE_RULE",
    "PATIENCE_RULE",
    "NeuralModel",
    "carve_validation",
    "diverged",
    "pack",
    "run_epochs",
    "sample_negatives",
    "train_epochs",
    "unpack",
    "validation_ndcg",
]


class _DeviceRule:
    """``device`` is ``"auto"``, ``"cpu"``, ``"cuda"`` (or ``"cuda:N"``) or ``"mps"``."""

    def check(self, model: str, name: str, value: Any) -> None:
        from ..._torch import check_device_name

        check_device_name(model, value)


DEVICE_RULE = _DeviceRule()
#: ``patience``: epochs without improvement of the validation NDCG@10 before training stops.
PATIENCE_RULE = Int(lo=1, none_ok=True)
#: Share of each user's training items held out for validation when ``patience`` is set.
VALIDATION_SHARE = 0.1
#: CPU threads torch uses while a neural model trains. The models' mini-batches are small,
#: so torch's intra-op threads gain little, and on a machine whose cores are busy they
#: cost several times the single-thread time (measured here: 5x for CDAE on 2 shared
#: cores). Raise it for large batches on an idle many-core machine. A model whose steps
#: are large dense products (``large_batches = True``: MultVAE's softmax over the whole
#: catalogue for hundreds of users) uses all of recseek's threads instead.
TORCH_THREADS = 1


class NeuralModel:
    """Mixin of the torch models: device choice, seeding, the module <-> array round trip."""

    device: str
    seed: int | None
    verbose: bool
    #: Steps are large dense products that torch's intra-op threads speed up.
    large_batches = False

    def fit(self, train: Interactions) -> Any:
        """Fit with torch on :data:`TORCH_THREADS` CPU threads (at most recseek's thread
        count, ``recseek._numba``; all of them for ``large_batches`` models), restored
        afterwards."""
        from ..._numba import get_num_threads

        self.check_params()  # type: ignore[attr-defined]
        t = self._torch()
        before = t.get_num_threads()
        wanted = get_num_threads() if self.large_batches else min(TORCH_THREADS, get_num_threads())
        t.set_num_threads(max(1, wanted))
        try:
            return super().fit(train)  # type: ignore[misc]
        finally:
            t.set_num_threads(before)

    def _torch(self) -> Any:
        from ..._torch import torch

        return torch(f"{self.display_name} (a neural model)")  # type: ignore[attr-defined]

    def _device(self) -> Any:
        from ..._torch import resolve_device

        return resolve_device(self.device, self.display_name)  # type: ignore[attr-defined]

    @contextmanager
    def _seeded(self) -> Iterator[Any]:
        """torch's global generator seeded for weight initialisation (restored afterwards)."""
        t = self._torch()
        with t.random.fork_rng(devices=[]):
            t.manual_seed(int(self.seed) if self.seed is not None else int(np.random.SeedSequence().entropy % 2**63))
            yield t

    def _numpy_rng(self, stream: int = 0) -> np.random.Generator:
        return np.random.default_rng(None if self.seed is None else [int(self.seed), stream])

    def _generator(self) -> Any:
        from ..._torch import seeded_generator

        return seeded_generator(self.seed, "cpu")


def train_epochs(model: Any, net: Any, optimizer: Any, n_examples: int, batch_loss: Callable[[Any, int], Any], *,
                 epochs: int, batch_size: int, generator: Any, validate: Callable[[], float] | None = None,
                 patience: int | None = None, shuffle: bool = True) -> list[float]:
    """Run ``epochs`` passes of mini-batch training; returns the mean loss of each epoch.

    ``batch_loss(index, epoch)`` gets a CPU ``LongTensor`` of example positions and
    returns the (scalar) loss of that batch. With ``validate`` and ``patience``, the
    validation figure (higher is better) is computed after every epoch, training stops
    after ``patience`` epochs without improvement, and the best weights are restored.
    """
    t = model._torch()

    def one_epoch(epoch: int) -> float:
        net.train()
        order = t.randperm(n_examples, generator=generator) if shuffle else t.arange(n_examples)
        total, batches = 0.0, 0
        for start in range(0, n_examples, batch_size):
            loss = batch_loss(order[start:start + batch_size], epoch)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            value = float(loss.detach())
            if not np.isfinite(value):
                diverged(model, epoch, value)
            total += value
            batches += 1
        return total / max(batches, 1)

    def checked() -> float:
        net.eval()
        with t.no_grad():
            return float(validate())  # type: ignore[misc]

    losses = run_epochs(model, one_epoch, epochs=epochs, validate=checked if validate is not None else None,
                        patience=patience, snapshot=lambda: {k: v.detach().clone() for k, v in net.state_dict().items()},
                        restore=net.load_state_dict)
    net.eval()
    return losses


def diverged(model: Any, epoch: int, value: float) -> None:
    """Raise the :class:`~recseek.errors.TrainingError` of a loss that stopped being finite."""
    raise TrainingError(f"{model.display_name}: training diverged at epoch {epoch} (the loss is "
                        f"{value}); {model.divergence_hint}")


def run_epochs(model: Any, one_epoch: Callable[[int], float], *, epochs: int,
               validate: Callable[[], float] | None = None, patience: int | None = None,
               snapshot: Callable[[], Any] | None = None, restore: Callable[[Any], Any] | None = None) -> list[float]:
    """The epoch loop of :func:`train_epochs` for a model that runs its own epochs:
    ``one_epoch(epoch)`` trains one pass and returns its mean loss (calling
    :func:`diverged` when the loss stops being finite). The progress bar, and with
    ``validate`` and ``patience`` the early stopping: the best weights are kept with
    ``snapshot()`` and put back with ``restore(saved)``."""
    losses: list[float] = []
    bar = None
    epoch_iter: Any = range(epochs)
    if model.verbose:
        from tqdm.auto import tqdm

        bar = tqdm(epoch_iter, total=epochs, desc=model.display_name, leave=False)
        epoch_iter = bar
    stopping = validate is not None and patience is not None
    best, best_state, waited = -np.inf, None, 0
    for epoch in epoch_iter:
        mean = float(one_epoch(epoch))
        losses.append(mean)
        postfix = {"loss": f"{mean:.4f}"}
        if stopping:
            score = float(validate())  # type: ignore[misc]
            postfix["val_ndcg@10"] = f"{score:.4f}"
            if score > best:
                best, waited = score, 0
                best_state = snapshot() if snapshot is not None else None
            else:
                waited += 1
        if bar is not None:
            bar.set_postfix(postfix)
        if stopping and waited >= patience:  # type: ignore[operator]
            break
    if best_state is not None and restore is not None:
        restore(best_state)
    return losses


def carve_validation(train: Interactions, seed: int | None, share: float = VALIDATION_SHARE
                     ) -> tuple[Interactions, Interactions]:
    """``(fit, valid)``: ``share`` of each user's interactions (rounded down; users with
    fewer than two keep all) held out at random for validation."""
    rng = np.random.default_rng(None if seed is None else [int(seed), 7])
    users = train.user_index()
    counts = np.diff(train.matrix.indptr)
    order = np.lexsort((rng.random(train.nnz), users))
    rank = np.empty(train.nnz, dtype=np.int64)
    starts = np.repeat(train.matrix.indptr[:-1], counts)
    rank[order] = np.arange(train.nnz) - starts
    held = rank < np.floor(share * counts[users]).astype(np.int64)
    return train.subset(~held), train.subset(held)


def validation_ndcg(score_users: Callable[[np.ndarray], np.ndarray], fit: Interactions, valid: Interactions,
                    k: int = 10) -> float:
    """NDCG@``k`` of the scores on ``valid`` (the ``fit`` items left out of every list)."""
    from ...metrics import ranking as rm
    from .._topk import topk

    users = np.flatnonzero(np.diff(valid.matrix.indptr) > 0)
    if users.size == 0:
        return 0.0
    scores = np.asarray(score_users(users), dtype=np.float32)
    ids = topk(scores, k, exclude=sp.csr_array(fit.matrix[users])).ids
    rel = sp.csr_array(valid.matrix[users])
    hits = rm.hit_matrix(ids, rel)
    return float(np.mean(rm.ndcg(hits, np.diff(rel.indptr), rm.list_lengths(ids))))


def sample_negatives(indptr: np.ndarray, indices: np.ndarray, users: np.ndarray, n_items: int, count: int,
                     rng: np.random.Generator, rounds: int = 20, keys: np.ndarray | None = None,
                     mask: np.ndarray | None = None) -> np.ndarray:
    """``count`` uniform negatives per entry of ``users``, shape (len(users), count), each
    redrawn while the user interacted with it (up to ``rounds`` times; a user who has
    every item keeps the last draw). ``keys``: :func:`indptr_keys` of the pattern, when
    the caller computed them once for many calls; ``mask``: :func:`seen_mask` of it
    (the same draws, looked up instead of searched)."""
    users = np.asarray(users, dtype=np.int64)
    out = rng.integers(0, n_items, size=(users.shape[0], count), dtype=np.int64)
    if keys is None and mask is None:
        keys = indptr_keys(indptr, indices, n_items)
    rows = np.repeat(users, count).reshape(out.shape)
    for _ in range(rounds):
        bad = mask[rows, out] if mask is not None else _contains(keys, rows * n_items + out)  # type: ignore[arg-type]
        if not bad.any():
            break
        out[bad] = rng.integers(0, n_items, size=int(bad.sum()), dtype=np.int64)
    return out


def seen_mask(indptr: np.ndarray, indices: np.ndarray, n_items: int, limit: int = 1 << 25) -> np.ndarray | None:
    """The pattern as a dense (n_users, n_items) boolean matrix, or ``None`` when it would
    hold more than ``limit`` cells (then :func:`indptr_keys` serve)."""
    n_users = len(indptr) - 1
    if n_users * n_items > limit:
        return None
    mask = np.zeros((n_users, n_items), dtype=bool)
    mask[np.repeat(np.arange(n_users), np.diff(indptr)), indices] = True
    return mask


def indptr_keys(indptr: np.ndarray, indices: np.ndarray, n_items: int) -> np.ndarray:
    """Sorted ``user * n_items + item`` keys of a CSR pattern with sorted rows."""
    users = np.repeat(np.arange(len(indptr) - 1, dtype=np.int64), np.diff(indptr))
    return users * n_items + indices.astype(np.int64)


def _contains(sorted_keys: np.ndarray, queries: np.ndarray) -> np.ndarray:
    if sorted_keys.size == 0:
        return np.zeros(queries.shape, dtype=bool)
    pos = np.searchsorted(sorted_keys, queries)
    pos = np.minimum(pos, sorted_keys.size - 1)
    return sorted_keys[pos] == queries


# ---------------------------------------------------------------- flat weights
def mlp_shapes(sizes: list[int]) -> list[tuple[int, ...]]:
    """Weight and bias shapes of a stack of linear layers ``sizes[0] -> sizes[1] -> ...``
    (torch's ``(out, in)`` weight layout)."""
    shapes: list[tuple[int, ...]] = []
    for a, b in zip(sizes[:-1], sizes[1:], strict=True):
        shapes += [(b, a), (b,)]
    return shapes


def flat_size(shapes: list[tuple[int, ...]]) -> int:
    return int(sum(int(np.prod(s)) for s in shapes))


def pack(tensors: list[Any]) -> np.ndarray:
    """Tensors (or arrays) flattened into one float32 array."""
    parts = [np.asarray(x.detach().cpu().numpy() if hasattr(x, "detach") else x, dtype=np.float32).ravel()
             for x in tensors]
    return np.concatenate(parts).astype(np.float32) if parts else np.zeros(0, dtype=np.float32)


def unpack(flat: np.ndarray, shapes: list[tuple[int, ...]], owner: str, name: str) -> list[np.ndarray]:
    """Arrays of ``shapes`` cut from ``flat`` (a ModelFileError when the sizes disagree)."""
    need = flat_size(shapes)
    if flat.shape != (need,):
        raise ModelFileError(f"{owner} state {name} holds {flat.size} weights, but the layer sizes in the "
                             f"hyperparameters need {need}")
    out, pos = [], 0
    for s in shapes:
        n = int(np.prod(s))
        out.append(flat[pos:pos + n].reshape(s))
        pos += n
    return out


def layer_sizes(owner: str, name: str, value: Any) -> list[int]:
    """A ``layers`` hyperparameter (a list or tuple of positive ints) as a list."""
    if isinstance(value, int | np.integer) and not isinstance(value, bool):
        value = [int(value)]
    if (not isinstance(value, list | tuple) or not value
            or any(isinstance(v, bool) or not isinstance(v, int | np.integer) or v < 1 for v in value)):
        raise ParameterError(f"{owner}: {name} must be a non-empty list of positive layer sizes, got {value!r}")
    return [int(v) for v in value]


class LayersRule:
    """A list of positive layer sizes."""

    def check(self, model: str, name: str, value: Any) -> None:
        layer_sizes(model, name, value)


def relu(x: np.ndarray) -> np.ndarray:
    return np.maximum(x, 0, out=x)


def sigmoid(x: np.ndarray) -> np.ndarray:
    out = np.empty_like(x)
    pos = x >= 0
    out[pos] = 1.0 / (1.0 + np.exp(-x[pos]))
    ex = np.exp(x[~pos])
    out[~pos] = ex / (1.0 + ex)
    return out


def mlp_forward(x: np.ndarray, weights: list[np.ndarray], activation: Callable[[np.ndarray], np.ndarray] = relu,
                last: bool = True) -> np.ndarray:
    """numpy forward of a linear stack (weights as from :func:`unpack`); ``last=False``
    leaves the final layer without the activation."""
    n = len(weights) // 2
    for layer in range(n):
        w, b = weights[2 * layer], weights[2 * layer + 1]
        x = x @ w.T + b
        if last or layer < n - 1:
            x = activation(x)
    return x


def csr_to_torch(t: Any, m: sp.csr_array, device: Any) -> Any:
    """A scipy sparse matrix as a coalesced torch sparse COO tensor on ``device`` (float32);
    COO because torch's backward through ``sparse @ dense`` is fastest for it on the CPU."""
    c = sp.coo_array(m)
    index = t.from_numpy(np.vstack([c.row, c.col]).astype(np.int64))
    return t.sparse_coo_tensor(index, t.from_numpy(c.data.astype(np.float32)), size=c.shape).coalesce().to(device)


def dense_rows(t: Any, m: sp.csr_array, rows: np.ndarray, device: Any) -> Any:
    """Rows of a CSR matrix as a dense float32 tensor on ``device``."""
    sub = sp.csr_array(m[rows])
    return t.from_numpy(sub.toarray().astype(np.float32, copy=False)).to(device)


def pair_tower(user_part: np.ndarray, item_part: np.ndarray, rest: list[np.ndarray], out_w: np.ndarray,
               budget: int = 1 << 22) -> np.ndarray:
    """Scores ``(n_u, n_i)`` of an MLP tower over every (user, item) pair whose first
    linear layer is split into a user and an item half: ``relu(user_part[u] + item_part[i])``
    (first layer, biases included in ``user_part``), then the linear + ReLU layers of
    ``rest`` (as from :func:`unpack`), then the dot product with ``out_w``. Users are
    processed in blocks of about ``budget`` hidden values."""
    n_u, n_i = user_part.shape[0], item_part.shape[0]
    width = max(user_part.shape[1], 1)
    out = np.empty((n_u, n_i), dtype=np.float32)
    step = max(1, budget // max(n_i * width, 1))
    for start in range(0, n_u, step):
        x = user_part[start:start + step, None, :] + item_part[None, :, :]
        np.maximum(x, 0, out=x)
        x = x.reshape(-1, x.shape[-1])
        x = mlp_forward(x, rest, relu, last=True) if rest else x
        out[start:start + step] = (x @ out_w).reshape(-1, n_i)
    return out
