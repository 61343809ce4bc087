"""The one top-k path: seen-item exclusion, candidate restriction and ordering.

Every model's ``recommend`` and every evaluation goes through :func:`topk`, so all
of them break ties and filter items the same way: higher score first, then lower
item index; NaN and ``-inf`` scores are never returned; rows with fewer than ``k``
eligible items are padded with id ``-1`` and score ``-inf``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp

#: Score matrices with at least this many entries are ranked on all cores.
PARALLEL_TOPK_ENTRIES = 1 << 20


@dataclass(frozen=True)
class Ranking:
    """Top-k result for a batch of users.

    Attributes
    ----------
    ids : ndarray of int64, shape (n_users, k)
        Item indices, best first; ``-1`` pads rows with fewer than ``k`` items.
    scores : ndarray of float32, shape (n_users, k)
        Scores aligned with ``ids``; ``-inf`` where padded.
    """

    ids: np.ndarray
    scores: np.ndarray

    def __len__(self) -> int:
        return int(self.ids.shape[0])

    def row(self, r: int) -> tuple[np.ndarray, np.ndarray]:
        """Unpadded ``(ids, scores)`` of row ``r``."""
        keep = self.ids[r] >= 0
        return self.ids[r][keep], self.scores[r][keep]


def mask_rows(scores: np.ndarray, rows: sp.csr_array | sp.csr_matrix, value: float = -np.inf) -> None:
    """Set ``scores[r, j] = value`` for each stored entry (r, j) of ``rows`` (in place).

    ``rows`` must have one row per row of ``scores``.
    """
    indptr = rows.indptr
    if indptr[-1] == 0:
        return
    r = np.repeat(np.arange(rows.shape[0]), np.diff(indptr))
    scores[r, rows.indices] = value


def topk(
    scores: np.ndarray,
    k: int,
    *,
    exclude: sp.csr_array | None = None,
    allowed: np.ndarray | None = None,
    item_ids: np.ndarray | None = None,
) -> Ranking:
    """Best ``k`` columns of each row of ``scores``.

    Parameters
    ----------
    scores : ndarray, shape (n, m)
        Modified in place (excluded entries set to ``-inf``).
    k : int
        Number of items per row (>= 1).
    exclude : csr, shape (n, m), optional
        Entries never to return (e.g. items seen in training).
    allowed : bool ndarray, shape (n, m), optional
        When given, only entries that are true may be returned.
    item_ids : ndarray, shape (m,), optional
        Map column positions to item ids (when ``scores`` covers a candidate subset).
    """
    scores = np.asarray(scores)
    if scores.dtype != np.float32 and scores.dtype != np.float64:
        scores = scores.astype(np.float32)
    n, m = scores.shape
    if exclude is not None:
        mask_rows(scores, exclude)
    if allowed is not None:
        scores[~allowed] = -np.inf
    kk = min(k, m)
    from ._topk_kernel import topk_rows, topk_rows_serial

    ids = np.empty((n, kk), dtype=np.int64)
    top = np.empty((n, kk), dtype=scores.dtype)
    if n and kk:
        kernel = topk_rows if n * m >= PARALLEL_TOPK_ENTRIES else topk_rows_serial
        kernel(np.ascontiguousarray(scores), kk, ids, top)
    if item_ids is not None:
        ids = np.where(ids >= 0, np.asarray(item_ids, dtype=np.int64)[np.maximum(ids, 0)], -1)
    top = top.astype(np.float32)
    if kk < k:
        ids = np.hstack([ids, np.full((n, k - kk), -1, dtype=np.int64)])
        top = np.hstack([top, np.full((n, k - kk), -np.inf, dtype=np.float32)])
    return Ranking(ids, top)

