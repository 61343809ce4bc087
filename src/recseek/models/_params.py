"""Declarative hyperparameter checks: one clear sentence per bad value."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from ..errors import ParameterError


@dataclass(frozen=True)
class Int:
    """An integer in ``[lo, hi]`` (either bound optional); ``none_ok`` admits None."""

    lo: int | None = None
    hi: int | None = None
    none_ok: bool = False

    def check(self, model: str, name: str, value: Any) -> None:
        if value is None and self.none_ok:
            return
        if isinstance(value, bool) or not isinstance(value, int | float) or (
            isinstance(value, float) and not value.is_integer()
        ):
            raise ParameterError(f"{model}: {name} must be an integer, got {value!r}")
        _bounds(model, name, value, self.lo, self.hi)


@dataclass(frozen=True)
class Float:
    """A finite real number in ``[lo, hi]``; ``lo_open`` makes the lower bound strict."""

    lo: float | None = None
    hi: float | None = None
    lo_open: bool = False
    none_ok: bool = False

    def check(self, model: str, name: str, value: Any) -> None:
        if value is None and self.none_ok:
            return
        if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
            raise ParameterError(f"{model}: {name} must be a finite number, got {value!r}")
        if self.lo_open and self.lo is not None and value <= self.lo:
            raise ParameterError(f"{model}: {name} must be greater than {self.lo}, got {value!r}")
        _bounds(model, name, value, self.lo, self.hi)


@dataclass(frozen=True)
class Choice:
    """One of a fixed set of values."""

    options: tuple[Any, ...]

    def check(self, model: str, name: str, value: Any) -> None:
        if value not in self.options:
            opts = ", ".join(repr(o) for o in self.options)
            raise ParameterError(f"{model}: {name} must be one of {opts}, got {value!r}")


@dataclass(frozen=True)
class Bool:
    def check(self, model: str, name: str, value: Any) -> None:
        if not isinstance(value, bool):
            raise ParameterError(f"{model}: {name} must be true or false, got {value!r}")


def _bounds(model: str, name: str, value: float, lo: float | None, hi: float | None) -> None:
    if lo is not None and value < lo:
        raise ParameterError(f"{model}: {name} must be at least {lo}, got {value!r}")
    if hi is not None and value > hi:
        raise ParameterError(f"{model}: {name} must be at most {hi}, got {value!r}")


#: Rules shared by many models, keyed by the standard hyperparameter names.
STANDARD_RULES: dict[str, Any] = {
    "factors": Int(lo=1),
    "epochs": Int(lo=1),
    "iterations": Int(lo=1),
    "learning_rate": Float(lo=0.0, lo_open=True),
    "reg": Float(lo=0.0),
    "neighbors": Int(lo=1),
    "seed": Int(lo=0, none_ok=True),
    "shrinkage": Float(lo=0.0),
    "alpha": Float(lo=0.0),
    "verbose": Bool(),
}
