"""Linear item-item and low-rank models: EASE, SLIM, PureSVD,
FISM, PRankD, RFRec, IRRG."""

from .ease import EASE
from .fism import FISMAUC, FISMRMSE
from .irrg import IRRG
from .prankd import PRankD
from .puresvd import PureSVD
from .rfrec import RFRec
from .slim import SLIM

__all__ = ["EASE", "FISMAUC", "FISMRMSE", "IRRG", "SLIM", "PRankD", "PureSVD", "RFRec"]
