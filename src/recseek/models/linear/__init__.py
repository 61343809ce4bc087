"""Linear item-item and low-rank models: EASE, SLIM, PureSVD, FISM."""

from .ease import EASE
from .fism import FISMAUC, FISMRMSE
from .puresvd import PureSVD
from .rfrec import RFRec
from .slim import SLIM

__all__ = ["EASE", "FISMAUC", "FISMRMSE", "SLIM", "PureSVD", "RFRec"]
