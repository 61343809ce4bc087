"""IR metrics over batches of ranked lists: nDCG@k (graded), Recall@k, P@k, MAP, MRR.

A run is an array of document ids, shape (n_queries, depth), best first, ``""`` for
padding; qrels are one ``{doc_id: gain}`` dict per query. :func:`gain_matrix` turns both
into a float matrix of gains with one vectorised lookup, and every metric is a numpy
expression over that matrix.

Conventions (as trec_eval): gains are used linearly in DCG (``gain / log2(rank + 1)``);
a document is relevant when its gain is > 0; queries without any relevant document are
left out of the averages; MAP and MRR use the whole depth of the run.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

from ..errors import ParameterError

__all__ = [
    "gain_matrix",
    "ndcg_at_k",
    "recall_at_k",
    "precision_at_k",
    "average_precision",
    "reciprocal_rank",
    "evaluate",
    "DEFAULT_METRICS",
]

DEFAULT_METRICS = ("ndcg@10", "recall@100", "map", "mrr", "p@10")


def gain_matrix(ids: np.ndarray, qrels: Sequence[Mapping[str, float]]) -> tuple[np.ndarray, list[np.ndarray]]:
    """Gains of a run and the judged gains of each query.

    Parameters
    ----------
    ids : ndarray of str, shape (n_queries, depth)
    qrels : sequence of dict doc_id -> gain, one per query (aligned with ``ids``)

    Returns
    -------
    gains : ndarray of float64, shape (n_queries, depth)
    judged : list of ndarray
        Each query's gains sorted descending (for the ideal ranking).
    """
    ids = np.asarray(ids)
    if ids.ndim != 2:
        raise ParameterError(f"run ids must have shape (n_queries, depth), got {ids.shape}")
    nq, depth = ids.shape
    if len(qrels) != nq:
        raise ParameterError(f"{len(qrels)} qrels for {nq} queries")
    keys, vals, judged = [], [], []
    for q, rel in enumerate(qrels):
        keys.extend(f"{q}\t{d}" for d in rel)
        g = np.fromiter((float(v) for v in rel.values()), dtype=np.float64, count=len(rel))
        vals.append(g)
        judged.append(-np.sort(-g))
    gains = np.zeros((nq, depth), dtype=np.float64)
    if not keys or depth == 0:
        return gains, judged
    key_arr = np.asarray(keys)
    val_arr = np.concatenate(vals)
    order = np.argsort(key_arr)
    key_arr, val_arr = key_arr[order], val_arr[order]
    run_keys = np.char.add(np.char.add(np.arange(nq).astype(str)[:, None], "\t"), ids.astype(str))
    pos = np.searchsorted(key_arr, run_keys)
    pos = np.minimum(pos, key_arr.size - 1)
    hit = (key_arr[pos] == run_keys) & (ids != "")
    gains[hit] = val_arr[pos[hit]]
    return gains, judged


def _check_k(k: int) -> int:
    if isinstance(k, bool) or not isinstance(k, int | np.integer) or k <= 0:
        raise ParameterError(f"k must be a positive integer, got {k!r}")
    return int(k)


def _n_relevant(judged: list[np.ndarray]) -> np.ndarray:
    return np.array([(g > 0).sum() for g in judged], dtype=np.float64)


def ndcg_at_k(gains: np.ndarray, judged: list[np.ndarray], k: int) -> np.ndarray:
    """Per-query nDCG@k with linear gains; NaN for queries with no relevant document."""
    k = _check_k(k)
    disc = 1.0 / np.log2(np.arange(2, k + 2))
    g = gains[:, :k]
    dcg = (g * disc[: g.shape[1]]).sum(axis=1)
    ideal = np.zeros((len(judged), k))
    for q, j in enumerate(judged):
        top = j[:k]
        top = top[top > 0]
        ideal[q, : top.size] = top
    idcg = (ideal * disc).sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(idcg > 0, dcg / np.where(idcg > 0, idcg, 1.0), np.nan)


def recall_at_k(gains: np.ndarray, judged: list[np.ndarray], k: int) -> np.ndarray:
    """Share of a query's relevant documents in its top k; NaN without relevant documents."""
    k = _check_k(k)
    n_rel = _n_relevant(judged)
    hits = (gains[:, :k] > 0).sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(n_rel > 0, hits / np.maximum(n_rel, 1), np.nan)


def precision_at_k(gains: np.ndarray, judged: list[np.ndarray], k: int) -> np.ndarray:
    """Relevant documents in the top k divided by k; NaN without relevant documents."""
    k = _check_k(k)
    n_rel = _n_relevant(judged)
    hits = (gains[:, :k] > 0).sum(axis=1)
    return np.where(n_rel > 0, hits / k, np.nan)


def average_precision(gains: np.ndarray, judged: list[np.ndarray]) -> np.ndarray:
    """Average precision over the run's depth (divided by all relevant documents)."""
    n_rel = _n_relevant(judged)
    rel = gains > 0
    ranks = np.arange(1, gains.shape[1] + 1)
    prec = np.cumsum(rel, axis=1) / ranks
    s = (prec * rel).sum(axis=1)
    return np.where(n_rel > 0, s / np.maximum(n_rel, 1), np.nan)


def reciprocal_rank(gains: np.ndarray, judged: list[np.ndarray]) -> np.ndarray:
    """1 / rank of the first relevant document (0 when none is retrieved)."""
    n_rel = _n_relevant(judged)
    rel = gains > 0
    first = rel.argmax(axis=1)
    rr = np.where(rel.any(axis=1), 1.0 / (first + 1), 0.0)
    return np.where(n_rel > 0, rr, np.nan)


def evaluate(
    ids: np.ndarray, qrels: Sequence[Mapping[str, float]], metrics: Sequence[str] = DEFAULT_METRICS
) -> dict[str, float]:
    """Mean of each metric over queries with at least one relevant document.

    ``metrics`` names: ``ndcg@K``, ``recall@K``, ``p@K``, ``map``, ``mrr``.
    """
    gains, judged = gain_matrix(ids, qrels)
    out: dict[str, float] = {}
    for name in metrics:
        base, _, kk = name.lower().partition("@")
        if base in ("ndcg", "recall", "p"):
            try:
                k = int(kk)
            except ValueError:
                raise ParameterError(f"metric {name!r} needs a cutoff, e.g. {base}@10") from None
            fn = {"ndcg": ndcg_at_k, "recall": recall_at_k, "p": precision_at_k}[base]
            vals = fn(gains, judged, k)
        elif base == "map" and not kk:
            vals = average_precision(gains, judged)
        elif base == "mrr" and not kk:
            vals = reciprocal_rank(gains, judged)
        else:
            raise ParameterError(f"unknown metric {name!r}; known: ndcg@K, recall@K, p@K, map, mrr")
        valid = ~np.isnan(vals)
        out[name] = float(vals[valid].mean()) if valid.any() else float("nan")
    return out
