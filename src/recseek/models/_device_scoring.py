"""Full-ranking scores and top-k of factor models on a torch device, in blocks of users.

For users with a GPU: the score matrix of a factor model (``U V^T`` plus biases) and its
top-k are computed on the device, ``block_users`` rows at a time, and only the ``k`` best
ids and scores of each row come back. On a CPU-only machine the same code runs on
torch's CPU device (and the numpy path stays the default everywhere).

Which models qualify is decided from their learned state, not from a list: a model with
``user_factors_`` (n_users, d) and ``item_factors_`` (n_items, d), and optionally
``user_bias_``, ``item_bias_`` and ``global_bias_``, is written as one product of
augmented factors ``[U, 1, b_u + g] [V, b_i, 1]^T``; before any device work the
augmented scores are checked against the model's own ``score`` on a few users, and a
model whose scores are something else (a non-linear model, or factors used differently)
is refused with an :class:`~recseek.errors.UnsupportedError` instead of being ranked
wrongly. Neural models that reduce to embeddings (LightGCN) qualify the same way.

Ordering follows :func:`recseek.models._topk.topk`: higher score first, then the lower
item index among the returned items; items seen in training are left out, rows with
fewer eligible items are padded with id ``-1`` and score ``-inf``. Only an item tied with
the k-th score exactly may differ from the numpy path.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import scipy.sparse as sp

from ..errors import UnsupportedError
from ._topk import Ranking
from .base import Recommender, check_k

__all__ = ["augmented_factors", "device_scores", "device_topk", "recommend_on_device"]

#: Users whose augmented scores are compared with the model's own before device work.
CHECK_USERS = 8


def augmented_factors(model: Recommender) -> tuple[np.ndarray, np.ndarray]:
    """``(P, Q)`` with ``P @ Q.T`` equal to ``model.score`` for every known user and item.

    Raises UnsupportedError when the model has no factors or scores otherwise.
    """
    model._check_fitted()
    u = getattr(model, "user_factors_", None)
    v = getattr(model, "item_factors_", None)
    if not isinstance(u, np.ndarray) or not isinstance(v, np.ndarray) or u.ndim != 2 or v.ndim != 2 \
            or u.shape[1] != v.shape[1] or u.shape[0] != model.n_users_ or v.shape[0] != model.n_items_:
        raise UnsupportedError(f"{model.display_name} has no user and item factors to score on a device")
    n_u, n_i = u.shape[0], v.shape[0]
    ub = getattr(model, "user_bias_", None)
    ib = getattr(model, "item_bias_", None)
    gb = getattr(model, "global_bias_", None)
    ub = np.asarray(ub, dtype=np.float32) if isinstance(ub, np.ndarray) and ub.shape == (n_u,) else np.zeros(n_u, np.float32)
    ib = np.asarray(ib, dtype=np.float32) if isinstance(ib, np.ndarray) and ib.shape == (n_i,) else np.zeros(n_i, np.float32)
    g = np.float32(gb) if isinstance(gb, float | int | np.floating) else np.float32(0.0)
    p = np.hstack([u.astype(np.float32), np.ones((n_u, 1), np.float32), (ub + g)[:, None]])
    q = np.hstack([v.astype(np.float32), ib[:, None], np.ones((n_i, 1), np.float32)])
    users = np.unique(np.linspace(0, n_u - 1, min(CHECK_USERS, n_u)).astype(np.int64))
    theirs = np.asarray(model.score(users), dtype=np.float64)
    ours = p[users].astype(np.float64) @ q.T.astype(np.float64)
    scale = max(1.0, float(np.nanmax(np.abs(theirs))) if np.isfinite(theirs).any() else 1.0)
    if not np.isfinite(theirs).all() or not np.allclose(ours, theirs, rtol=1e-4, atol=1e-4 * scale):
        raise UnsupportedError(f"{model.display_name}'s scores are not a product of its factors (plus biases), "
                               "so it cannot be ranked on a device; use recommend()")
    return p, q


def _block(n_items: int, width: int, budget_bytes: int) -> int:
    return max(1, budget_bytes // (4 * max(n_items, 1) * 2 + 4 * width))


def device_scores(p: np.ndarray, q: np.ndarray, users: np.ndarray, device: Any = "auto",
                  block_users: int | None = None) -> np.ndarray:
    """``p[users] @ q.T`` (float32) computed on ``device`` in blocks of users."""
    from .._torch import resolve_device, torch

    t = torch("scoring on a device")
    dev = resolve_device(device, "device scoring") if isinstance(device, str) else device
    qd = t.from_numpy(np.ascontiguousarray(q, dtype=np.float32)).to(dev)
    users = np.asarray(users, dtype=np.int64)
    step = block_users or _block(q.shape[0], q.shape[1], 256 << 20)
    out = np.empty((users.size, q.shape[0]), dtype=np.float32)
    for start in range(0, users.size, step):
        pu = t.from_numpy(np.ascontiguousarray(p[users[start:start + step]], dtype=np.float32)).to(dev)
        out[start:start + step] = (pu @ qd.T).cpu().numpy()
    return out


def device_topk(p: np.ndarray, q: np.ndarray, users: np.ndarray, k: int, *, exclude: sp.csr_array | None = None,
                device: Any = "auto", block_users: int | None = None) -> Ranking:
    """Top-``k`` of ``p[users] @ q.T`` on ``device``, leaving out the entries of ``exclude``
    (rows aligned with ``users``), in blocks of ``block_users`` users."""
    from .._torch import resolve_device, torch

    t = torch("scoring on a device")
    k = check_k(k, "k")
    dev = resolve_device(device, "device scoring") if isinstance(device, str) else device
    users = np.asarray(users, dtype=np.int64)
    n_items = q.shape[0]
    kk = min(k, n_items)
    qd = t.from_numpy(np.ascontiguousarray(q, dtype=np.float32)).to(dev)
    step = block_users or _block(n_items, q.shape[1], 256 << 20)
    ids = np.full((users.size, k), -1, dtype=np.int64)
    top = np.full((users.size, k), -np.inf, dtype=np.float32)
    ex = None if exclude is None else sp.csr_array(exclude)
    for start in range(0, users.size, step):
        stop = min(start + step, users.size)
        pu = t.from_numpy(np.ascontiguousarray(p[users[start:stop]], dtype=np.float32)).to(dev)
        s = pu @ qd.T
        if ex is not None:
            rows = sp.coo_array(ex[start:stop])
            if rows.nnz:
                r = t.from_numpy(rows.row.astype(np.int64)).to(dev)
                c = t.from_numpy(rows.col.astype(np.int64)).to(dev)
                s[r, c] = -float("inf")
        s = t.nan_to_num(s, nan=-float("inf"), posinf=float(np.finfo(np.float32).max), neginf=-float("inf"))
        val, idx = t.topk(s, kk, dim=1, largest=True, sorted=True)
        val, idx = val.cpu().numpy(), idx.cpu().numpy().astype(np.int64)
        # ties: the shared top-k puts the lower item index first
        order = np.lexsort((idx, -val), axis=1) if kk else idx
        idx = np.take_along_axis(idx, order, axis=1)
        val = np.take_along_axis(val, order, axis=1)
        dead = ~np.isfinite(val)
        idx[dead] = -1
        val[dead] = -np.inf
        ids[start:stop, :kk] = idx
        top[start:stop, :kk] = val
    return Ranking(ids, top)


def recommend_on_device(model: Recommender, users: Any, k: int = 10, *, exclude_seen: bool = True,
                        device: str = "auto", block_users: int | None = None) -> Ranking:
    """``model.recommend(users, k)`` with the scores and the top-k computed on ``device``.

    Unknown users get rows of ``-1``. Raises UnsupportedError for models whose scores are
    not a product of factors (see :func:`augmented_factors`).
    """
    p, q = augmented_factors(model)
    users = np.atleast_1d(np.asarray(users, dtype=np.int64))
    k = check_k(k, "k")
    known = (users >= 0) & (users < model.n_users_)
    ids = np.full((users.size, k), -1, dtype=np.int64)
    top = np.full((users.size, k), -np.inf, dtype=np.float32)
    if known.any():
        ku = users[known]
        ex = sp.csr_array(model.seen_[ku]) if exclude_seen else None
        r = device_topk(p, q, ku, k, exclude=ex, device=device, block_users=block_users)
        ids[known], top[known] = r.ids, r.scores
    return Ranking(ids, top)
