"""recseek: a recommendation and search engine.

Recommendation (rating prediction and top-N ranking), lexical/dense/hybrid search,
leakage-free evaluation, HTTP serving and federated training over one data model.
"""

from __future__ import annotations

__version__ = "0.1.0"

from .data import Interactions, Vocabulary  # noqa: E402
from .errors import RecseekError  # noqa: E402

__all__ = ["Interactions", "Vocabulary", "RecseekError", "__version__"]
