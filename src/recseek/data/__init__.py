"""Interactions, vocabularies, readers and splits."""

from ._interactions import DUPLICATE_POLICIES, Interactions, build_csr
from ._vocab import Vocabulary

__all__ = ["DUPLICATE_POLICIES", "Interactions", "Vocabulary", "build_csr"]
