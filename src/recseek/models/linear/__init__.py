"""Linear item-item and low-rank models: EASE, SLIM, PureSVD."""

from .ease import EASE
from .puresvd import PureSVD
from .slim import SLIM

__all__ = ["EASE", "SLIM", "PureSVD"]
