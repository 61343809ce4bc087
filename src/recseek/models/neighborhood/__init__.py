"""Neighbourhood models: k-NN (item/user, ranking/rating), KNNBaseline, graph walks and
co-occurrence rules."""

from .knn import ItemKNNRanking, ItemKNNRating, KNNBaseline, UserKNNRanking, UserKNNRating

__all__ = ["ItemKNNRanking", "ItemKNNRating", "KNNBaseline", "UserKNNRanking", "UserKNNRating"]
