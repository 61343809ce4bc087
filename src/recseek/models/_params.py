"""Declarative hyperparameter checks: one clear sentence per bad value."""

from __future__ import annotations

import math
import warnings
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from ..errors import ParameterError
from ._glossary import renamed_for


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


@dataclass(frozen=True)
class UsedWhen:
    """A hyperparameter that only has an effect while ``other`` is one of ``values``.

    ``rule`` checks the value itself. :func:`check_effects` refuses a value other than the
    default while ``other`` is outside ``values``, since it would silently do nothing.
    """

    other: str
    values: tuple[Any, ...]
    rule: Any = None

    def check(self, model: str, name: str, value: Any) -> None:
        if self.rule is not None:
            self.rule.check(model, name, value)

    def check_effect(self, model: str, name: str, params: dict[str, Any], defaults: dict[str, Any]) -> None:
        value = params[name]
        if name in defaults and _same(value, defaults[name]):
            return
        current = params.get(self.other)
        if any(_same(current, v) for v in self.values):
            return
        wanted = " or ".join(repr(v) for v in self.values)
        raise ParameterError(
            f"{model}: {name}={value!r} has no effect unless {self.other} is {wanted} (it is {current!r});"
            f" set {self.other} or leave {name} at its default"
        )


def _same(a: Any, b: Any) -> bool:
    """Equal values of the same kind (``1 == 1.0``, but ``True`` is not ``1``)."""
    if isinstance(a, bool) or isinstance(b, bool):
        return a is b
    try:
        return bool(a == b)
    except (TypeError, ValueError):
        return False


def check_effects(model: Any, rules: dict[str, Any]) -> None:
    """Refuse non-default values of hyperparameters that have no effect in ``model``'s mode."""
    params = model.get_params()
    defaults = model.param_defaults()
    for name, rule in rules.items():
        if isinstance(rule, UsedWhen) and name in params:
            rule.check_effect(model.display_name, name, params, defaults)


def renamed_params(model: str, params: dict[str, Any], valid: Iterable[str]) -> dict[str, Any]:
    """``params`` with names renamed by the glossary replaced by their new names.

    Each old name gives a ``DeprecationWarning``; giving both the old and the new name is
    an error.
    """
    renames = renamed_for(model, list(valid))
    if not renames or not any(k in renames for k in params):
        return params
    out: dict[str, Any] = {}
    for key, value in params.items():
        new = renames.get(key)
        if new is not None:
            if new in params:
                raise ParameterError(f"{model}: {key!r} is the old name of {new!r}; give only {new!r}")
            warnings.warn(f"{model}: hyperparameter {key!r} is deprecated, use {new!r}",
                          DeprecationWarning, stacklevel=3)
            key = new
        out[key] = value
    return out


#: Rules shared by many models, keyed by the glossary names (recseek.models._glossary).
STANDARD_RULES: dict[str, Any] = {
    "factors": Int(lo=1),
    "epochs": Int(lo=1),
    "learning_rate": Float(lo=0.0, lo_open=True),
    "reg": Float(lo=0.0),
    "reg_user": Float(lo=0.0),
    "reg_item": Float(lo=0.0),
    "reg_bias": Float(lo=0.0, none_ok=True),
    "reg_l1": Float(lo=0.0),
    "init_std": Float(lo=0.0),
    "neighbors": Int(lo=1),
    "negatives": Int(lo=1),
    "batch_size": Int(lo=1),
    "seed": Int(lo=0, none_ok=True),
    "shrinkage": Float(lo=0.0),
    "alpha": Float(lo=0.0),
    "verbose": Bool(),
}
