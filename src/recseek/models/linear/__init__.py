"""Linear item-item and low-rank models: EASE, SLIM, PureSVD,
FISM, PRankD, RFRec."""

from .ease import EASE
from .fism import FISMAUC, FISMRMSE
from .prankd import PRankD
from .puresvd import PureSVD
from .rfrec import RFRec
from .slim import SLIM

__all__ = ["EASE", "FISMAUC", "FISMRMSE", "SLIM", "PRankD", "PureSVD", "RFRec"]
