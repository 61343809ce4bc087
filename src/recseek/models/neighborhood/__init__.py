"""Neighbourhood models: k-NN (item/user, ranking/rating), KNNBaseline, graph walks and
co-occurrence rules."""

from .graph import RP3beta
from .knn import ItemKNNRanking, ItemKNNRating, KNNBaseline, UserKNNRanking, UserKNNRating

__all__ = ["ItemKNNRanking", "ItemKNNRating", "KNNBaseline", "RP3beta", "UserKNNRanking", "UserKNNRating"]
