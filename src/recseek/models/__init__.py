"""Recommender models, the registry and the shared top-k path."""

from ._topk import Ranking, topk
from .base import RatingPredictor, Recommender
from .registry import available, create, get, register

__all__ = ["Ranking", "RatingPredictor", "Recommender", "available", "create", "get", "register", "topk"]
