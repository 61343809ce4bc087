"""numba settings shared by every kernel module: compiled once, cached on disk."""

from __future__ import annotations

import functools

import numba

#: ``@njit`` for kernels: nopython, cached on disk so the CLI starts fast after first use.
njit = functools.partial(numba.njit, cache=True, nogil=True)
#: ``@pnjit`` for multi-core kernels with ``numba.prange``.
pnjit = functools.partial(numba.njit, cache=True, nogil=True, parallel=True)
prange = numba.prange


def set_num_threads(n: int) -> None:
    """Limit the threads used by recseek's multi-core kernels."""
    numba.set_num_threads(max(1, min(int(n), numba.config.NUMBA_NUM_THREADS)))


def get_num_threads() -> int:
    return int(numba.get_num_threads())
