"""Evaluation protocols (split -> fit -> recommend -> metrics) and TOML experiments."""

from .protocol import (
    DEFAULT_RANKING_METRICS,
    DEFAULT_RATING_METRICS,
    evaluate,
    evaluate_ranking,
    evaluate_rating,
    metric_key,
)

__all__ = [
    "DEFAULT_RANKING_METRICS",
    "DEFAULT_RATING_METRICS",
    "evaluate",
    "evaluate_ranking",
    "evaluate_rating",
    "metric_key",
    "run_experiment",
]


def __getattr__(name: str):
    if name == "run_experiment":
        from .experiment import run_experiment

        return run_experiment
    raise AttributeError(name)
