"""Neighbourhood models: k-NN (item/user, ranking/rating), KNNBaseline, graph walks and
co-occurrence rules."""

from .cooccurrence import AssociationRule, SlopeOne
from .graph import RP3beta
from .knn import ItemKNNRanking, ItemKNNRating, KNNBaseline, UserKNNRanking, UserKNNRating
from .personality import PersonalityDiagnosis

__all__ = [
    "AssociationRule", "PersonalityDiagnosis", "SlopeOne",
    "ItemKNNRanking", "ItemKNNRating", "KNNBaseline", "RP3beta", "UserKNNRanking", "UserKNNRating"]
