"""Top-k ranking metrics, vectorised over users.

Every function works on a boolean *hit matrix* ``hits`` of shape (n_users, k) — entry
``(u, j)`` is true when the j-th recommended item of user ``u`` is one of the user's
relevant (test) items — plus per-user counts, and returns one value per user; the
evaluation protocol averages them (each user counts once). Build the hit matrix with
:func:`hit_matrix`.

Definitions follow JStarCraft RNS (``jstarcraft-ai`` evaluators) except where noted:

- precision = hits / k
- recall = hits / |relevant|; ``recall_capped`` = hits / min(|relevant|, k)
- NDCG: binary gains, DCG = sum of 1 / log2(rank + 1) over hits, IDCG over
  min(|relevant|, L) positions, L = length of the (possibly shorter than k) list
- MAP (``map``): sum of precision@rank over the hits in the top k, divided by |relevant|
  (TREC's definition: ``map_cut_k`` of trec_eval, the same as search MAP in
  :mod:`recseek.search.metrics`); ``map_capped``: the same sum divided by
  min(|relevant|, L) (the JStarCraft RNS and RecBole convention, used for the P1 table;
  it reaches 1 for a perfect list even when a user has more than k relevant items)
- MRR: 1 / rank of the first hit (0 without hits); hit rate: 1 if any hit
- AUC (top-N form, :func:`auc_topn`): JStarCraft's approximation from the top-k list
- AUC over all candidates (:func:`auc_full`): share of (relevant, non-relevant
  candidate) pairs ordered correctly, ties counted as one half
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp

__all__ = [
    "auc_full",
    "auc_topn",
    "average_precision",
    "average_precision_capped",
    "hit_matrix",
    "hit_rate",
    "list_lengths",
    "ndcg",
    "precision",
    "recall",
    "recall_capped",
    "reciprocal_rank",
]


def _row_keys(matrix: sp.csr_array) -> np.ndarray:
    """``row * n_cols + col`` of every stored entry (sorted when indices are sorted)."""
    rows = np.repeat(np.arange(matrix.shape[0], dtype=np.int64), np.diff(matrix.indptr))
    return rows * np.int64(matrix.shape[1]) + matrix.indices.astype(np.int64)


def _sorted_csr(matrix: sp.csr_array | sp.csr_matrix) -> sp.csr_array:
    m = sp.csr_array(matrix)
    if not m.has_sorted_indices:
        m = m.copy()
        m.sort_indices()
    return m


def hit_matrix(ids: np.ndarray, relevant: sp.csr_array | sp.csr_matrix) -> np.ndarray:
    """Which recommended items are relevant.

    Parameters
    ----------
    ids : int ndarray, shape (n, k)
        Recommended item indices per row, best first; ``-1`` marks padding.
    relevant : csr, shape (n, n_items)
        Row ``r`` holds the relevant items of the user of ``ids[r]`` (stored entries).

    Returns
    -------
    bool ndarray, shape (n, k)
    """
    ids = np.asarray(ids, dtype=np.int64)
    rel = _sorted_csr(relevant)
    n, k = ids.shape
    if rel.shape[0] != n:
        raise ValueError(f"relevant has {rel.shape[0]} rows, ids has {n}")
    keys = _row_keys(rel)
    if keys.size == 0 or k == 0:
        return np.zeros((n, k), dtype=bool)
    valid = (ids >= 0) & (ids < rel.shape[1])
    query = np.arange(n, dtype=np.int64)[:, None] * np.int64(rel.shape[1]) + np.where(valid, ids, 0)
    pos = np.searchsorted(keys, query)
    found = keys[np.minimum(pos, keys.size - 1)] == query
    return found & valid


def list_lengths(ids: np.ndarray) -> np.ndarray:
    """Number of real (non-padding) items in each recommendation list."""
    return (np.asarray(ids) >= 0).sum(axis=1)


def _safe_div(num: np.ndarray, den: np.ndarray) -> np.ndarray:
    num = np.asarray(num, dtype=np.float64)
    den = np.asarray(den, dtype=np.float64)
    out = np.zeros(np.broadcast(num, den).shape, dtype=np.float64)
    np.divide(num, den, out=out, where=den > 0)
    return out


def precision(hits: np.ndarray, k: int) -> np.ndarray:
    """Hits divided by ``k`` (the list size asked for), per user."""
    return hits.sum(axis=1) / float(k)


def recall(hits: np.ndarray, n_relevant: np.ndarray) -> np.ndarray:
    """Hits divided by the number of relevant items, per user."""
    return _safe_div(hits.sum(axis=1), n_relevant)


def recall_capped(hits: np.ndarray, n_relevant: np.ndarray, k: int) -> np.ndarray:
    """Hits divided by ``min(|relevant|, k)`` (reaches 1 when the list is perfect)."""
    return _safe_div(hits.sum(axis=1), np.minimum(n_relevant, k))


def _discounts(k: int) -> np.ndarray:
    return 1.0 / np.log2(np.arange(2, k + 2, dtype=np.float64))


def ndcg(hits: np.ndarray, n_relevant: np.ndarray, lengths: np.ndarray | None = None) -> np.ndarray:
    """Binary NDCG; the ideal DCG covers ``min(|relevant|, list length)`` positions."""
    n, k = hits.shape
    lengths = np.full(n, k) if lengths is None else lengths
    disc = _discounts(k)
    dcg = hits @ disc
    idcg = np.concatenate([[0.0], np.cumsum(disc)])[np.minimum(n_relevant, lengths)]
    return _safe_div(dcg, idcg)


def _precision_sum(hits: np.ndarray) -> np.ndarray:
    """Sum over hits of precision at the hit's rank, per user."""
    ranks = np.arange(1, hits.shape[1] + 1, dtype=np.float64)
    return ((np.cumsum(hits, axis=1) / ranks) * hits).sum(axis=1)


def average_precision(hits: np.ndarray, n_relevant: np.ndarray) -> np.ndarray:
    """TREC average precision at k: the precision sum divided by ``|relevant|`` (metric ``map``)."""
    return _safe_div(_precision_sum(hits), n_relevant)


def average_precision_capped(hits: np.ndarray, n_relevant: np.ndarray, lengths: np.ndarray | None = None) -> np.ndarray:
    """The precision sum divided by ``min(|relevant|, list length)`` (metric ``map_capped``;
    JStarCraft RNS and RecBole call this MAP)."""
    n, k = hits.shape
    lengths = np.full(n, k) if lengths is None else lengths
    return _safe_div(_precision_sum(hits), np.minimum(n_relevant, lengths))


def reciprocal_rank(hits: np.ndarray) -> np.ndarray:
    """1 / rank of the first hit, 0 for users without a hit."""
    any_hit = hits.any(axis=1)
    first = np.argmax(hits, axis=1)
    return np.where(any_hit, 1.0 / (first + 1.0), 0.0)


def hit_rate(hits: np.ndarray) -> np.ndarray:
    """1 for users with at least one hit in the list, else 0."""
    return hits.any(axis=1).astype(np.float64)


def auc_topn(
    ids: np.ndarray,
    hits: np.ndarray,
    relevant: sp.csr_array | sp.csr_matrix,
    n_candidates: np.ndarray,
) -> np.ndarray:
    """JStarCraft RNS's AUC estimated from the top-k list (its ``AUCEvaluator``).

    With ``N`` candidates (items not in the user's training data), list length ``L``,
    ``h`` hits, ``m = L - h`` misses and ``T`` relevant items, the value is
    ``(h * (N - m) + X) / (h * (T + N - L - h))`` and 0.5 when the denominator is 0.
    ``X`` counts pairs (relevant item in the list, relevant item not in the list)
    where the first comes before the second when the relevant items are taken in
    ascending item-index order (JStarCraft walks its hash set of test items there).

    Parameters
    ----------
    ids, hits : shape (n, k)
        Recommended items and the hit matrix from :func:`hit_matrix`.
    relevant : csr, shape (n, n_items)
        Relevant items, one row per row of ``ids``.
    n_candidates : int ndarray, shape (n,)
        Items that could be ranked for each user.
    """
    rel = _sorted_csr(relevant)
    n = ids.shape[0]
    lengths = np.minimum(list_lengths(ids), n_candidates)
    h = hits.sum(axis=1).astype(np.int64)
    m = lengths - h
    t = np.diff(rel.indptr).astype(np.int64)
    # mark which relevant entries were recommended: look test keys up in the list keys
    rec_keys = np.arange(n, dtype=np.int64)[:, None] * np.int64(rel.shape[1]) + ids
    rec_sorted = np.sort(np.where(ids >= 0, rec_keys, -1).ravel())
    test_keys = _row_keys(rel)
    if test_keys.size:
        pos = np.searchsorted(rec_sorted, test_keys)
        in_list = rec_sorted[np.minimum(pos, rec_sorted.size - 1)] == test_keys
        # relevant items in the list that come before each entry of its row
        prefix = np.concatenate([[0], np.cumsum(in_list)])
        rows = np.repeat(np.arange(n), np.diff(rel.indptr))
        before = prefix[:-1] - prefix[rel.indptr[:-1]][rows]
        x = np.bincount(rows[~in_list], weights=before[~in_list], minlength=n)
    else:
        x = np.zeros(n)
    num = h * (n_candidates - m) + x
    den = h * (t + n_candidates - lengths - h)
    out = np.full(n, 0.5)
    np.divide(num, den, out=out, where=den != 0)
    return out


def auc_full(
    scores: np.ndarray,
    relevant: sp.csr_array | sp.csr_matrix,
    excluded: sp.csr_array | sp.csr_matrix | None = None,
    allowed: np.ndarray | None = None,
) -> np.ndarray:
    """AUC of each row's scores: relevant items against every other candidate.

    Parameters
    ----------
    scores : float ndarray, shape (n, n_items)
        Model scores; NaN counts as the lowest possible score.
    relevant : csr, shape (n, n_items)
        Positive items per row.
    excluded : csr, shape (n, n_items), optional
        Items that are not candidates (e.g. the user's training items).
    allowed : bool ndarray, shape (n, n_items), optional
        When given, only these items are candidates (sampled protocols).

    Returns
    -------
    float64 ndarray, shape (n,): 0.5 for rows without positives or without negatives.
    """
    from ._kernels import auc_rows

    rel = _sorted_csr(relevant)
    n, n_items = scores.shape
    cand = np.ones((n, n_items), dtype=bool) if allowed is None else np.array(allowed, dtype=bool)
    if excluded is not None:
        ex = sp.csr_array(excluded)
        r = np.repeat(np.arange(n), np.diff(ex.indptr))
        cand[r, ex.indices] = False
    pos = np.zeros((n, n_items), dtype=bool)
    r = np.repeat(np.arange(n), np.diff(rel.indptr))
    pos[r, rel.indices] = True
    pos &= cand
    s = np.nan_to_num(np.asarray(scores, dtype=np.float64), nan=-np.inf)
    return auc_rows(s, pos, cand)
