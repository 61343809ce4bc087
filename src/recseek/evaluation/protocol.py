"""Evaluation protocols: a fitted model, its training data and a test set -> metrics.

Ranking (:func:`evaluate_ranking`) is a *full ranking* by default: every user with at
least one test item gets a top-k list over every item outside their training data
(through the model's ``recommend``, the one top-k path), each user counts once, and
every metric is a numpy reduction over a (users x k) hit matrix. A *sampled* protocol
(each test user's test items ranked against ``sampled`` random items they never
interacted with) runs only when asked, and then every metric name says so, e.g.
``ndcg@10 (sampled 100)``; sampled metrics are known to disagree with full ones
(Krichene & Rendle, KDD 2020) and are offered for comparison with older papers.

Rating (:func:`evaluate_rating`) predicts every test rating, clamped to the training
rating range (or ``clip``), and averages over ratings.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import scipy.sparse as sp

from ..data import Interactions
from ..errors import DataError, ParameterError, UnsupportedError
from ..metrics import RANKING_METRICS, RATING_METRICS
from ..models.base import SCORE_BLOCK_BYTES, RatingPredictor, Recommender, check_k

__all__ = [
    "DEFAULT_RANKING_METRICS",
    "DEFAULT_RATING_METRICS",
    "RankingDetails",
    "evaluate",
    "evaluate_ranking",
    "evaluate_rating",
    "metric_key",
]

#: Metrics computed by :func:`evaluate_ranking` when none are named.
DEFAULT_RANKING_METRICS = ("auc", "map", "map_capped", "mrr", "ndcg", "novelty", "precision", "recall", "hitrate", "coverage", "gini")
#: Metrics computed by :func:`evaluate_rating` when none are named.
DEFAULT_RATING_METRICS = ("mae", "mse", "rmse", "mpe")

#: Metrics that describe the whole set of lists (not averaged over users).
_CATALOGUE = ("coverage", "gini")


def metric_key(name: str, k: int, sampled: int | None = None) -> str:
    """The result key of a ranking metric: ``ndcg@10``, ``auc_full``, ``ndcg@10 (sampled 100)``."""
    key = name if name == "auc_full" else f"{name}@{k}"
    return key if sampled is None else f"{key} (sampled {sampled})"


def _metric_names(metrics: Iterable[str] | str | None, valid: Sequence[str], default: Sequence[str],
                  what: str) -> list[str]:
    if metrics is None:
        return list(default)
    if isinstance(metrics, str):
        metrics = [metrics]
    out: list[str] = []
    for m in metrics:
        if not isinstance(m, str):
            raise ParameterError(f"metric names must be strings, got {m!r}")
        name = m.strip().lower().split("@", 1)[0]
        if name not in valid:
            raise ParameterError(f"unknown {what} metric {m!r} (valid: {', '.join(valid)})")
        if name not in out:
            out.append(name)
    if not out:
        raise ParameterError(f"no {what} metric named")
    return out


def _check_pair(model: Recommender, train: Interactions | None, test: Interactions) -> None:
    if not isinstance(test, Interactions):
        raise DataError(f"test must be Interactions, got {type(test).__name__}")
    model._check_fitted()
    if train is not None:
        if not isinstance(train, Interactions):
            raise DataError(f"train must be Interactions, got {type(train).__name__}")
        if train.shape != test.shape:
            raise DataError(
                f"train {train.shape} and test {test.shape} must share their user and item vocabularies"
            )
    if (model.n_users_, model.n_items_) != test.shape:
        raise DataError(
            f"the model was fitted on {model.n_users_} users x {model.n_items_} items but the test data has "
            f"{test.n_users} x {test.n_items}; split the data before fitting so both share vocabularies"
        )


@dataclass
class RankingDetails:
    """Per-user results of :func:`evaluate_ranking` (``per_user=True``).

    Attributes
    ----------
    users : int ndarray (n,)
        The evaluated users (those with a test item), ascending.
    ids : int ndarray (n, depth)
        Their recommendation lists, ``depth = max(k, cutoffs)``; ``-1`` pads.
    n_relevant : int ndarray (n,)
        Test items per evaluated user.
    per_user : dict
        Result key (e.g. ``"ndcg@10"``) -> per-user values at ``k`` (catalogue
        metrics such as coverage and gini have none).
    curves : dict
        Cutoff -> {result key at that cutoff -> mean}, for each of ``cutoffs``.
    """

    users: np.ndarray
    ids: np.ndarray
    n_relevant: np.ndarray
    per_user: dict[str, np.ndarray] = field(default_factory=dict)
    curves: dict[int, dict[str, float]] = field(default_factory=dict)


def _pattern(m: sp.csr_array) -> sp.csr_array:
    return sp.csr_array((np.ones(m.nnz, dtype=np.float32), m.indices, m.indptr), shape=m.shape)


def _sample_negatives(
    users: np.ndarray, train: sp.csr_array, test: sp.csr_array, n: int, rng: np.random.Generator
) -> np.ndarray:
    """Bool mask (len(users), n_items): the user's test items plus ``n`` random items outside
    train and test (fewer when fewer exist), uniform without replacement."""
    n_items = train.shape[1]
    blocked = _pattern(train[users]) + _pattern(test[users])
    blocked = sp.csr_array(blocked)
    keys = rng.random((len(users), n_items), dtype=np.float32)
    rows = np.repeat(np.arange(len(users)), np.diff(blocked.indptr))
    keys[rows, blocked.indices] = np.inf
    allowed = np.zeros((len(users), n_items), dtype=bool)
    if n < n_items:
        pick = np.argpartition(keys, n - 1, axis=1)[:, :n]
    else:
        pick = np.broadcast_to(np.arange(n_items), (len(users), n_items))
    chosen = np.take_along_axis(keys, pick, axis=1) < np.inf
    r = np.broadcast_to(np.arange(len(users))[:, None], pick.shape)
    allowed[r[chosen], pick[chosen]] = True
    t = sp.csr_array(test[users])
    allowed[np.repeat(np.arange(len(users)), np.diff(t.indptr)), t.indices] = True
    return allowed


def evaluate_ranking(
    model: Recommender,
    train: Interactions,
    test: Interactions,
    k: int = 10,
    metrics: Iterable[str] | str | None = None,
    sampled: int | None = None,
    seed: int = 0,
    item_vectors: np.ndarray | sp.csr_array | None = None,
    per_user: bool = False,
    cutoffs: Iterable[int] | None = None,
    device: str | None = None,
) -> dict[str, float] | tuple[dict[str, float], RankingDetails]:
    """Top-k ranking metrics of a fitted ``model``.

    Parameters
    ----------
    model : Recommender
        Fitted on ``train``.
    train, test : Interactions
        One split (same vocabularies). Users with no test item are skipped; the
        items of a user's training data are never ranked.
    k : int
        List length (>= 1).
    metrics : list of str, optional
        Names from :data:`recseek.metrics.RANKING_METRICS` (a ``@k`` suffix is
        ignored); default :data:`DEFAULT_RANKING_METRICS`. ``auc`` is JStarCraft's
        estimate from the top-k list, ``auc_full`` ranks every candidate (it scores
        all items, so it costs a full score matrix). ``novelty`` uses item popularity
        from train + test; ``diversity`` uses ``item_vectors`` or, by default, the
        item co-occurrence cosine of ``train``.
    sampled : int, optional
        Rank each user's test items against this many random unseen items instead of
        the whole catalogue; every result key then ends with ``(sampled N)``.
    seed : int
        Seed of the sampled negatives.
    item_vectors : array (n_items, d) or csr, optional
        Item representations for ``diversity``.
    per_user : bool
        Also return a :class:`RankingDetails` with the per-user values and lists.
    cutoffs : list of int, optional
        With ``per_user``: also compute every metric at these list lengths from the
        same lists (one ``recommend`` call of length ``max(k, cutoffs)``; a prefix of
        a top-n list is the top-k list, ties being broken by item index).
    device : str, optional
        Compute the full-ranking top-k lists of a factor model on this torch device
        (``"cuda"``, ``"mps"``, ``"cpu"`` or ``"auto"``) in blocks of users, through
        :func:`recseek.models._device_scoring.recommend_on_device` (needs the ``neural``
        extra; a model whose scores are not a product of factors is refused). Default:
        numpy on the CPU. Sampled protocols always run on the CPU.

    Returns
    -------
    dict mapping keys such as ``"ndcg@10"`` to the mean over test users; with
    ``per_user``, the pair ``(dict, RankingDetails)``.
    """
    k = check_k(k, "k")
    names = _metric_names(metrics, RANKING_METRICS, DEFAULT_RANKING_METRICS, "ranking")
    if sampled is not None:
        if isinstance(sampled, bool) or not isinstance(sampled, int | np.integer) or sampled <= 0:
            raise ParameterError(f"sampled must be a positive integer number of negatives, got {sampled!r}")
        sampled = int(sampled)
    if isinstance(seed, bool) or not isinstance(seed, int | np.integer) or seed < 0:
        raise ParameterError(f"seed must be a non-negative integer, got {seed!r}")
    cuts = sorted({check_k(c, "cutoffs") for c in cutoffs}) if cutoffs is not None else []
    depth = max([k, *cuts])
    _check_pair(model, train, test)
    from ..metrics import ranking as rm

    test_m = sp.csr_array(test.matrix)
    train_m = sp.csr_array(train.matrix)
    n_rel_all = np.diff(test_m.indptr)
    users = np.flatnonzero(n_rel_all > 0)
    if users.size == 0:
        raise DataError("the test data has no interactions to evaluate")
    rel = sp.csr_array(test_m[users])
    n_rel = n_rel_all[users]
    n_items = test.n_items

    auc_values = None
    if sampled is None:
        if device is None:
            ranking = model.recommend(users, depth)
        else:
            from ..models._device_scoring import recommend_on_device

            ranking = recommend_on_device(model, users, depth, device=device)
        ids = ranking.ids
        n_cand = n_items - np.diff(train_m.indptr)[users]
        if "auc_full" in names:
            parts = []
            block = max(1, SCORE_BLOCK_BYTES // (8 * max(n_items, 1)))
            for s in range(0, len(users), block):
                ub = users[s : s + block]
                parts.append(rm.auc_full(model.score(ub), sp.csr_array(test_m[ub]), excluded=train_m[ub]))
            auc_values = np.concatenate(parts)
    else:
        from ..models._topk import topk

        rng = np.random.default_rng(seed)
        block = max(1, SCORE_BLOCK_BYTES // (8 * max(n_items, 1)))
        id_parts, cand_parts, auc_parts = [], [], []
        for s in range(0, len(users), block):
            ub = users[s : s + block]
            allowed = _sample_negatives(ub, train_m, test_m, sampled, rng)
            scores = np.asarray(model.score(ub), dtype=np.float32)
            if "auc_full" in names:
                auc_parts.append(rm.auc_full(scores, sp.csr_array(test_m[ub]), allowed=allowed))
            id_parts.append(topk(scores, depth, allowed=allowed).ids)
            cand_parts.append(allowed.sum(axis=1))
        ids = np.vstack(id_parts)
        n_cand = np.concatenate(cand_parts)
        if auc_parts:
            auc_values = np.concatenate(auc_parts)

    hits = rm.hit_matrix(ids, rel)
    lists = _Lists(ids, hits, rel, n_rel, n_cand, auc_values)
    context = (train_m, test_m, test.n_users, n_items, item_vectors)
    values = _ranking_values(names, lists.prefix(k), k, context)
    out = {metric_key(name, k, sampled): _mean(name, v) for name, v in values.items()}
    if not per_user:
        return out
    details = RankingDetails(users, ids, n_rel, per_user={
        metric_key(name, k, sampled): np.asarray(v, dtype=np.float64)
        for name, v in values.items() if name not in _CATALOGUE
    })
    for c in cuts:
        at_c = _ranking_values([n for n in names if n != "auc_full"], lists.prefix(c), c, context)
        details.curves[c] = {metric_key(name, c, sampled): _mean(name, v) for name, v in at_c.items()}
    return out, details


@dataclass
class _Lists:
    """Recommendation lists of the evaluated users and what their metrics need."""

    ids: np.ndarray
    hits: np.ndarray
    rel: sp.csr_array
    n_rel: np.ndarray
    n_cand: np.ndarray
    auc_full: np.ndarray | None

    def prefix(self, c: int) -> _Lists:
        """The same lists cut to their first ``c`` positions."""
        return _Lists(self.ids[:, :c], self.hits[:, :c], self.rel, self.n_rel, self.n_cand, self.auc_full)


def _mean(name: str, v: Any) -> float:
    return float(v) if name in _CATALOGUE else float(np.mean(v))


def _ranking_values(names: Sequence[str], lists: _Lists, k: int, context: tuple) -> dict[str, Any]:
    """Per-user values (catalogue metrics: one number) of each metric over ``lists`` at list length ``k``."""
    from ..metrics import beyond as bm
    from ..metrics import ranking as rm

    train_m, test_m, n_users, n_items, item_vectors = context
    ids, hits, rel, n_rel, n_cand = lists.ids, lists.hits, lists.rel, lists.n_rel, lists.n_cand
    auc_values = lists.auc_full
    lengths = rm.list_lengths(ids)
    out: dict[str, Any] = {}
    for name in names:
        if name == "precision":
            v = rm.precision(hits, k)
        elif name == "recall":
            v = rm.recall(hits, n_rel)
        elif name == "recall_capped":
            v = rm.recall_capped(hits, n_rel, k)
        elif name == "ndcg":
            v = rm.ndcg(hits, n_rel, lengths)
        elif name == "map":
            v = rm.average_precision(hits, n_rel)
        elif name == "map_capped":
            v = rm.average_precision_capped(hits, n_rel, lengths)
        elif name == "mrr":
            v = rm.reciprocal_rank(hits)
        elif name == "hitrate":
            v = rm.hit_rate(hits)
        elif name == "auc":
            v = rm.auc_topn(ids, hits, rel, n_cand)
        elif name == "auc_full":
            v = auc_values
        elif name == "novelty":
            v = bm.novelty(ids, bm.item_counts(train_m, test_m), n_users)
        elif name == "coverage":
            v = bm.coverage(ids, n_items)
        elif name == "gini":
            v = bm.gini(ids, n_items)
        else:  # diversity
            vecs = bm.cooccurrence_vectors(train_m) if item_vectors is None else item_vectors
            if vecs.shape[0] != n_items:
                raise DataError(f"item_vectors has {vecs.shape[0]} rows but there are {n_items} items")
            v = bm.diversity(ids, vecs)
        out[name] = v
    return out


def evaluate_rating(
    model: Recommender,
    test: Interactions,
    metrics: Iterable[str] | str | None = None,
    clip: tuple[float, float] | None = None,
) -> dict[str, float]:
    """Rating-prediction errors of a fitted rating model on every test rating.

    Predictions are clamped to the training rating range (the model's
    ``rating_min_``/``rating_max_``) or to ``clip=(low, high)`` when given.
    Metrics: ``mae``, ``mse``, ``rmse``, ``mpe`` (share of |error| > 0.01).
    """
    names = _metric_names(metrics, RATING_METRICS, DEFAULT_RATING_METRICS, "rating")
    if not isinstance(model, RatingPredictor):
        raise UnsupportedError(f"{model.display_name} is a ranking model and cannot predict ratings")
    _check_pair(model, None, test)
    if test.nnz == 0:
        raise DataError("the test data has no ratings to evaluate")
    if clip is not None:
        try:
            lo, hi = (float(c) for c in clip)
        except (TypeError, ValueError):
            raise ParameterError(f"clip must be a pair (low, high), got {clip!r}") from None
        if not lo <= hi:
            raise ParameterError(f"clip low {lo} is above high {hi}")
    from ..metrics import rating as rt

    u, i, truth, _ = test.to_coo()
    pred = np.asarray(model.predict(u, i), dtype=np.float64)
    if clip is not None:
        pred = np.clip(pred, lo, hi)
    funcs = {"mae": rt.mae, "mse": rt.mse, "rmse": rt.rmse, "mpe": rt.mpe}
    return {name: funcs[name](pred, truth) for name in names}


def evaluate(
    model: Recommender,
    train: Interactions,
    test: Interactions,
    task: str = "ranking",
    **options: Any,
) -> dict[str, float]:
    """Dispatch to :func:`evaluate_ranking` or :func:`evaluate_rating` by ``task``."""
    if task == "ranking":
        return evaluate_ranking(model, train, test, **options)
    if task == "rating":
        if train is not None and isinstance(train, Interactions) and train.shape != test.shape:
            raise DataError(f"train {train.shape} and test {test.shape} must share their vocabularies")
        return evaluate_rating(model, test, **options)
    raise ParameterError(f"task must be 'ranking' or 'rating', got {task!r}")
