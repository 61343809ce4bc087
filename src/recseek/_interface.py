"""Which interface is calling recseek: Python, the command line or a TOML experiment.

Advice in error messages names what the caller can change: a keyword argument in
Python (``path=...``), a flag on the command line (``--data``) or a key in a TOML
experiment (``columns = { user = "..." }``). The command line and the experiment
runner enter :func:`calling_from`; library code picks its wording with :func:`advice`.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Literal

Caller = Literal["python", "cli", "toml"]

_CALLERS: ContextVar[tuple[Caller, ...]] = ContextVar("recseek_callers", default=())


@contextmanager
def calling_from(caller: Caller) -> Iterator[None]:
    """Mark the code run inside the ``with`` block as called from ``caller``."""
    token = _CALLERS.set((*_CALLERS.get(), caller))
    try:
        yield
    finally:
        _CALLERS.reset(token)


def callers() -> tuple[Caller, ...]:
    """The interfaces active now, outermost first (empty for plain Python use)."""
    return _CALLERS.get()


def advice(python: str, *, cli: str | None = None, toml: str | None = None) -> str:
    """The advice for the innermost active interface that has a wording.

    A TOML experiment run from the command line gets ``toml`` (the experiment file is
    what the user edits), then ``cli``; plain Python gets ``python``.
    """
    active = callers()
    if toml is not None and "toml" in active:
        return toml
    if cli is not None and "cli" in active:
        return cli
    return python
