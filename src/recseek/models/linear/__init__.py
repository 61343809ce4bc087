"""Linear item-item models: EASE, SLIM and RFRec."""

from .ease import EASE
from .rfrec import RFRec
from .slim import SLIM

__all__ = ["EASE", "RFRec", "SLIM"]
