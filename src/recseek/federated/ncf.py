"""The NCF backbone of the federated methods: a small MLP on ``[user vector; item row]``.

As in the FedNCF backbone of FedCA's code (Zhang et al. 2024) after He et al.'s NCF
(WWW 2017): the client's score of item ``i`` is ``sigmoid(f([u; v_i]))`` where ``u`` (d,)
is the client's own vector, ``v_i`` (d,) the item's row of the item table and ``f`` an MLP
with widths ``2d -> h_1 -> ... -> 1`` and ReLU between layers (none after the last); the
models build NCF's tower, each hidden layer half as wide as the one before (:func:`tower`). The MLP (the "head") is one flat float32 vector: layer ``l``'s (out, in) weight
matrix row-major, then its bias, layer after layer (:func:`head_layout`).

Which side keeps the head is the method's choice: FedAvg and FedCA aggregate it with the
item table (FedCA's code mixes the MLP weights with the same composite weights as the
item embeddings); PFedRec keeps it on the client as its personal score function.

Scoring needs numpy only (:func:`ncf_logits`): a saved model scores without torch.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from ..errors import ParameterError


def hidden_sizes(value: Sequence[int] | int, owner: str = "federation") -> tuple[int, ...]:
    """``mlp_layers`` (hidden widths, possibly empty) checked and as a tuple."""
    if isinstance(value, int | np.integer) and not isinstance(value, bool):
        value = [int(value)]
    if not isinstance(value, list | tuple) or any(
            isinstance(v, bool) or not isinstance(v, int | np.integer) or v < 1 for v in value):
        raise ParameterError(f"{owner}: mlp_layers must be a list of positive layer widths, got {value!r}")
    return tuple(int(v) for v in value)


def tower(factors: int, layers: int) -> tuple[int, ...]:
    """Hidden widths of NCF's tower of ``layers`` layers on a ``2 factors``-wide input: each
    layer half as wide as the one before (at least 1): ``(factors, factors // 2, ...)``."""
    out = []
    width = 2 * int(factors)
    for _ in range(int(layers)):
        width = max(width // 2, 1)
        out.append(width)
    return tuple(out)


def head_layout(factors: int, hidden: Sequence[int]) -> tuple[np.ndarray, np.ndarray, np.ndarray, int]:
    """``(sizes, weight_offsets, bias_offsets, n_params)`` of the head for ``factors``-wide
    vectors and hidden widths ``hidden``; ``sizes = (2 factors, *hidden, 1)``."""
    sizes = np.array([2 * int(factors), *[int(h) for h in hidden], 1], dtype=np.int64)
    woff = np.empty(len(sizes) - 1, dtype=np.int64)
    boff = np.empty(len(sizes) - 1, dtype=np.int64)
    pos = 0
    for layer in range(len(sizes) - 1):
        woff[layer] = pos
        pos += int(sizes[layer] * sizes[layer + 1])
        boff[layer] = pos
        pos += int(sizes[layer + 1])
    return sizes, woff, boff, pos


def init_head(rng: np.random.Generator, sizes: np.ndarray) -> np.ndarray:
    """torch's ``nn.Linear`` initialisation, layer by layer: weights and biases uniform in
    ``+-1/sqrt(fan_in)``."""
    parts = []
    for layer in range(len(sizes) - 1):
        n_in, n_out = int(sizes[layer]), int(sizes[layer + 1])
        bound = 1.0 / np.sqrt(n_in)
        parts.append(rng.uniform(-bound, bound, n_out * n_in))
        parts.append(rng.uniform(-bound, bound, n_out))
    return np.concatenate(parts).astype(np.float32)


def unpack(head: np.ndarray, sizes: np.ndarray) -> list[tuple[np.ndarray, np.ndarray]]:
    """The head's ``(weight (out, in), bias (out,))`` per layer; ``head`` may carry leading
    batch dimensions (``(..., n_params)`` gives ``(..., out, in)`` and ``(..., out)``)."""
    out = []
    pos = 0
    lead = head.shape[:-1]
    for layer in range(len(sizes) - 1):
        n_in, n_out = int(sizes[layer]), int(sizes[layer + 1])
        w = head[..., pos: pos + n_out * n_in].reshape(*lead, n_out, n_in)
        pos += n_out * n_in
        b = head[..., pos: pos + n_out]
        pos += n_out
        out.append((w, b))
    if pos != head.shape[-1]:
        raise ParameterError(f"an NCF head of widths {tuple(int(s) for s in sizes)} has {pos} parameters, "
                             f"got {head.shape[-1]}")
    return out


def ncf_logits(U: np.ndarray, items: np.ndarray, head: np.ndarray, sizes: np.ndarray, block: int = 64) -> np.ndarray:
    """Logits ``f([u; v_i])`` of users ``U`` (n, d) for items, float32 (n, m).

    ``items`` is one item table (m, d) shared by the users or one table per user
    (n, m, d); ``head`` one head (P,) or one per user (n, P).
    """
    U = np.asarray(U, dtype=np.float32)
    n, d = U.shape
    per_user_items = items.ndim == 3
    per_user_head = head.ndim == 2
    m = items.shape[-2]
    out = np.empty((n, m), dtype=np.float32)
    for s in range(0, n, block):
        u = U[s: s + block]
        layers = unpack(head[s: s + block] if per_user_head else head, sizes)
        w1, b1 = layers[0]
        V = items[s: s + block] if per_user_items else items
        # first layer split into its user and item halves: W1 [u; v] = W1u u + W1v v
        if per_user_head:
            zu = np.einsum("bod,bd->bo", w1[:, :, :d], u) + b1
            zv = np.einsum("bod,bmd->bmo", w1[:, :, d:], V) if per_user_items else \
                np.einsum("bod,md->bmo", w1[:, :, d:], V)
        else:
            zu = u @ w1[:, :d].T + b1
            zv = V @ w1[:, d:].T if not per_user_items else np.einsum("bmd,od->bmo", V, w1[:, d:])
        h = zv + zu[:, None, :] if zv.ndim == 3 else zv[None, :, :] + zu[:, None, :]
        for w, b in layers[1:]:
            np.maximum(h, 0.0, out=h)
            if per_user_head:
                h = np.einsum("bmi,boi->bmo", h, w) + b[:, None, :]
            else:
                h = h @ w.T + b
        out[s: s + block] = h[..., 0]
    return out


__all__ = ["hidden_sizes", "head_layout", "init_head", "ncf_logits", "tower", "unpack"]
