"""HTTP serving of recseek models and search indexes (the ``serve`` extra).

``recseek serve serve.toml`` runs :func:`create_app` on uvicorn. The modules: ``config``
(serve.toml), ``registry`` (model store and served versions), ``batching`` (dynamic
batching), ``servables`` (batch execution), ``store`` (feedback events), ``metrics``
(Prometheus), ``app`` (routes) and ``cli``.
"""

from __future__ import annotations

from typing import Any

__all__ = ["create_app", "load_config", "FeedbackStore", "ModelStore", "ServeConfig"]

_LAZY = {"create_app": "app", "load_config": "config", "ServeConfig": "config", "FeedbackStore": "store",
         "ModelStore": "registry"}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(f"{__name__}.{_LAZY[name]}"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
