"""Models by name (case-insensitive; JStarCraft names such as ``MostPopular``).

Model classes register themselves with :func:`register`. The registry discovers them by
importing every public module under ``recseek.models`` on first use; modules whose name
starts with ``_`` (numba kernels and helpers) are not imported until a model needs them,
so listing models stays fast.

A model whose hyperparameters were renamed by the glossary (``recseek.models._glossary``)
still accepts the old names in its constructor for one release, with a
``DeprecationWarning``: saved models, old experiment files and user code keep loading.
"""

from __future__ import annotations

import functools
import importlib
import pkgutil
from typing import Any, TypeVar

from ..errors import ParameterError
from ._glossary import renamed_for
from ._params import renamed_params
from .base import Recommender, _unknown_param

T = TypeVar("T", bound=type[Recommender])

_MODELS: dict[str, type[Recommender]] = {}
_ALIASES: dict[str, str] = {}
_DISCOVERED = False


def register(cls: T | None = None, *, aliases: tuple[str, ...] = ()) -> Any:
    """Class decorator adding a model under ``cls.name`` (and optional aliases)."""

    def wrap(c: T) -> T:
        if not c.name:
            raise TypeError(f"{c.__name__} must define a class attribute 'name'")
        key = c.name.lower()
        if key in _MODELS and _MODELS[key] is not c:
            raise TypeError(f"model name {c.name!r} registered twice")
        _MODELS[key] = c
        for a in aliases:
            _ALIASES[a.lower()] = key
        _accept_renamed(c)
        return c

    return wrap(cls) if cls is not None else wrap


def _accept_renamed(cls: type[Recommender]) -> None:
    """Let ``cls``'s constructor take the names the glossary renamed (with a DeprecationWarning)."""
    valid = cls.param_names()
    if not renamed_for(cls.name, valid):
        return
    init = cls.__init__

    @functools.wraps(init)
    def __init__(self: Recommender, *args: Any, **kwargs: Any) -> None:
        init(self, *args, **renamed_params(cls.name, kwargs, valid))

    cls.__init__ = __init__  # type: ignore[method-assign]


def _discover() -> None:
    global _DISCOVERED
    if _DISCOVERED:
        return
    _DISCOVERED = True
    pkg = importlib.import_module("recseek.models")
    for info in pkgutil.walk_packages(pkg.__path__, prefix="recseek.models."):
        leaf = info.name.rsplit(".", 1)[-1]
        if leaf.startswith("_") or leaf in {"base", "registry"}:
            continue
        importlib.import_module(info.name)


def get(name: str) -> type[Recommender]:
    """The model class called ``name`` (case-insensitive)."""
    _discover()
    key = str(name).lower()
    key = _ALIASES.get(key, key)
    if key not in _MODELS:
        import difflib

        close = difflib.get_close_matches(key, list(_MODELS), n=1)
        hint = f"; did you mean {_MODELS[close[0]].name}?" if close else "; run 'recseek models' for the list"
        raise ParameterError(f"unknown model {name!r}{hint}")
    return _MODELS[key]


def create(name: str, **params: Any) -> Recommender:
    """Instantiate model ``name`` with hyperparameters, checking names and ranges."""
    cls = get(name)
    valid = cls.param_names()
    params = renamed_params(cls.name, params, valid)
    for k in params:
        if k not in valid:
            raise ParameterError(_unknown_param(cls.name, k, valid))
    model = cls(**params)
    model.check_params()
    return model


def available(task: str | None = None) -> list[type[Recommender]]:
    """Registered model classes (optionally of one task), sorted by name."""
    _discover()
    out = [c for c in _MODELS.values() if task is None or c.task == task]
    return sorted(out, key=lambda c: c.name.lower())
