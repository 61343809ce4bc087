"""recseek: a recommendation and search engine.

Recommendation (rating prediction and top-N ranking), lexical/dense/hybrid search,
leakage-free evaluation, HTTP serving and federated training over one data model.
"""

from __future__ import annotations

from typing import Any

__version__ = "0.1.0"

__all__ = ["Interactions", "Vocabulary", "RecseekError", "is_deterministic", "set_deterministic", "__version__"]


def __getattr__(name: str) -> Any:
    # imported lazily so that `recseek --help` does not pay for pandas and scipy
    if name in ("Interactions", "Vocabulary"):
        from . import data

        return getattr(data, name)
    if name in ("set_deterministic", "is_deterministic"):
        from . import _numba

        return getattr(_numba, name)
    if name == "RecseekError":
        from .errors import RecseekError

        return RecseekError
    raise AttributeError(f"module 'recseek' has no attribute {name!r}")
