"""Ranking, rating and beyond-accuracy metrics, vectorised over users.

Ranking metrics take a hit matrix (:func:`hit_matrix`) and return per-user values;
rating metrics take prediction and truth arrays; see :mod:`recseek.evaluation` for the
protocols that produce them.
"""

from .beyond import cooccurrence_vectors, coverage, diversity, gini, item_counts, novelty
from .ranking import (
    auc_full,
    auc_topn,
    average_precision,
    average_precision_capped,
    hit_matrix,
    hit_rate,
    list_lengths,
    ndcg,
    precision,
    recall,
    recall_capped,
    reciprocal_rank,
)
from .rating import mae, mpe, mse, rmse

#: Ranking metric names accepted by :func:`recseek.evaluation.evaluate_ranking`.
RANKING_METRICS = (
    "precision", "recall", "recall_capped", "ndcg", "map", "map_capped", "mrr", "hitrate", "auc", "auc_full",
    "novelty", "coverage", "gini", "diversity",
)
#: Rating metric names accepted by :func:`recseek.evaluation.evaluate_rating`.
RATING_METRICS = ("mae", "mse", "rmse", "mpe")

__all__ = [
    "RANKING_METRICS", "RATING_METRICS",
    "auc_full", "auc_topn", "average_precision", "average_precision_capped", "cooccurrence_vectors", "coverage", "diversity", "gini",
    "hit_matrix", "hit_rate", "item_counts", "list_lengths", "mae", "mpe", "mse", "ndcg", "novelty",
    "precision", "recall", "recall_capped", "reciprocal_rank", "rmse",
]
