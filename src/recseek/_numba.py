"""numba settings shared by every kernel module: compiled once, cached on disk.

Determinism
-----------
Lock-free ("Hogwild") SGD epochs let threads update shared factor rows without locks,
so their result depends on thread timing. Kernels declared with :func:`hogwild` are
compiled in two variants from one function: a serial one, used by default so that a fixed
seed reproduces results exactly, and a multi-threaded one, used only after
``set_deterministic(False)`` or with the environment variable ``RECSEEK_DETERMINISTIC=0``.
Each variant is compiled on its first use, so the parallel one costs nothing unless asked for.

Every other multi-core kernel (:func:`pnjit`) also has a serial twin, run on one numba
thread: small fits that run single-threaded compile no parallel code.
"""

from __future__ import annotations

import functools
import os
import types
from collections.abc import Callable
from typing import Any

from ._optional import require

numba = require("numba")

#: ``@njit`` for kernels: nopython, cached on disk so the CLI starts fast after first use.
njit = functools.partial(numba.njit, cache=True, nogil=True)
#: ``numba.njit`` with ``parallel=True`` (used through :func:`pnjit` and :func:`hogwild`).
_parallel_njit = functools.partial(numba.njit, cache=True, nogil=True, parallel=True)
prange = numba.prange

_ENV = "RECSEEK_DETERMINISTIC"
_deterministic: bool | None = None


def set_num_threads(n: int) -> None:
    """Limit the threads used by recseek's multi-core kernels."""
    numba.set_num_threads(max(1, min(int(n), numba.config.NUMBA_NUM_THREADS)))


def get_num_threads() -> int:
    return int(numba.get_num_threads())


def _from_environment() -> bool:
    raw = os.environ.get(_ENV, "1").strip().lower()
    if raw in ("1", "true", "yes", "on", ""):
        return True
    if raw in ("0", "false", "no", "off"):
        return False
    from .errors import ParameterError

    raise ParameterError(f"environment variable {_ENV} must be 1 or 0, got {raw!r}")


def is_deterministic() -> bool:
    """Whether lock-free SGD kernels run serially so that a fixed seed reproduces results."""
    global _deterministic
    if _deterministic is None:
        _deterministic = _from_environment()
    return _deterministic


def set_deterministic(flag: bool = True) -> bool:
    """Choose reproducible serial SGD (``True``, the default) or faster lock-free parallel SGD.

    Parameters
    ----------
    flag : bool
        ``False`` lets the SGD models marked non-deterministic in the README train on every
        numba thread without locks: faster on several cores, but two runs with one seed differ.

    Returns
    -------
    bool
        The previous setting.
    """
    global _deterministic
    before = is_deterministic()
    _deterministic = bool(flag)
    return before


def _twin(fn: Callable[..., Any], suffix: str) -> Callable[..., Any]:
    """A copy of ``fn`` under another name, so that its compiled code is cached separately."""
    twin = types.FunctionType(fn.__code__, fn.__globals__, fn.__name__ + suffix, fn.__defaults__, fn.__closure__)
    twin.__qualname__ = fn.__qualname__ + suffix
    twin.__module__ = fn.__module__
    twin.__doc__ = fn.__doc__
    return twin


class TwinKernel:
    """A multi-core kernel and its serial twin, both compiled lazily from one function.

    The twin runs the ``prange`` loops as plain loops, in order, and compiles in about half
    the time (no parallel lowering). A call runs the twin when numba has one thread (the
    same result as the parallel variant on one thread), the parallel variant otherwise;
    :meth:`variant` lets a caller that knows the work is small take the twin directly.
    """

    def __init__(self, fn: Callable[..., Any], options: dict[str, Any]) -> None:
        self.py_func = fn
        self._options = options
        self._serial: Any = None
        self._parallel: Any = None
        functools.update_wrapper(self, fn)

    @property
    def serial(self) -> Any:
        """The single-threaded variant (compiled on first use)."""
        if self._serial is None:
            self._serial = njit(**self._options)(_twin(self.py_func, "_one_thread"))
        return self._serial

    @property
    def parallel(self) -> Any:
        """The multi-threaded variant (compiled on first use)."""
        if self._parallel is None:
            self._parallel = _parallel_njit(**self._options)(self.py_func)
        return self._parallel

    def _wants_threads(self) -> bool:
        return get_num_threads() > 1

    def variant(self, parallel: bool = True) -> Any:
        """The compiled kernel to call: the serial twin unless ``parallel`` and threads allow it."""
        return self.parallel if parallel and self._wants_threads() else self.serial

    def __call__(self, *args: Any) -> Any:
        return self.variant()(*args)


class HogwildKernel(TwinKernel):
    """A lock-free SGD kernel: threads update shared rows without locks, so the parallel
    variant's result depends on thread timing; calls run the serial twin (chunks in order)
    while :func:`is_deterministic` holds."""

    def _wants_threads(self) -> bool:
        return not is_deterministic() and get_num_threads() > 1


def pnjit(fn: Callable[..., Any] | None = None, **options: Any) -> Any:
    """Decorator for multi-core kernels whose result does not depend on the threads
    (see :class:`TwinKernel`); takes ``njit`` options."""
    if fn is None:
        return lambda f: TwinKernel(f, options)
    return TwinKernel(fn, options)


def hogwild(fn: Callable[..., Any] | None = None, **options: Any) -> Any:
    """Decorator for lock-free SGD kernels (see :class:`HogwildKernel`); takes ``njit`` options."""
    if fn is None:
        return lambda f: HogwildKernel(f, options)
    return HogwildKernel(fn, options)
