"""Structural checks of saved search indexes: nothing read from disk reaches a kernel unverified.

The persistence layer verifies checksums; these checks make sure that even a file whose
checksum matches (one crafted together with its manifest, or written by a buggy version)
holds arrays of the expected dtype, shape and bounds, so that a corrupt index gives one
:class:`~recseek.errors.ModelFileError` sentence instead of a crash or a wrong answer.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import ModelFileError, RecseekError

__all__ = ["IndexFile", "read_index_bundle"]


def read_index_bundle(path: str | Path, mmap: bool = False) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
    """``read_bundle`` whose every failure on a damaged file is a :class:`ModelFileError`."""
    from ..persistence import read_bundle

    try:
        manifest, arrays = read_bundle(path, mmap=mmap)
    except ModelFileError:
        raise
    except RecseekError as e:
        raise ModelFileError(str(e)) from None
    except MemoryError:
        raise ModelFileError(f"{path}: an array header claims more memory than is available (file corrupt)") from None
    except Exception as e:  # zip, npy-header and OS errors of a damaged file
        msg = str(e).splitlines()[0] if str(e) else type(e).__name__
        raise ModelFileError(f"{path}: cannot read the saved index ({msg})") from None
    if not isinstance(manifest, dict):
        raise ModelFileError(f"{path}: the manifest is not a JSON object")
    return manifest, arrays


class IndexFile:
    """Typed access to the arrays and manifest entries of one saved index, raising ModelFileError."""

    def __init__(self, path: str | Path, manifest: Mapping[str, Any], arrays: Mapping[str, np.ndarray]) -> None:
        self.path = path
        self.manifest = manifest
        self.arrays = arrays

    def fail(self, what: str) -> ModelFileError:
        return ModelFileError(f"{self.path}: {what} (index file corrupt or modified)")

    def entry(self, key: str, types: type | tuple[type, ...]) -> Any:
        """Manifest entry ``key`` of one of ``types`` (bool never counts as int)."""
        if key not in self.manifest:
            raise ModelFileError(f"{self.path}: saved index lacks {key!r}")
        v = self.manifest[key]
        if isinstance(v, bool) and bool not in (types if isinstance(types, tuple) else (types,)):
            raise self.fail(f"manifest entry {key!r} is {v!r}")
        if not isinstance(v, types):
            raise self.fail(f"manifest entry {key!r} is a {type(v).__name__}")
        return v

    def count(self, key: str) -> int:
        v = self.entry(key, int)
        if v < 0:
            raise self.fail(f"manifest entry {key!r} is negative ({v})")
        return v

    def array(self, name: str, dtype: str | np.dtype, shape: tuple[int | None, ...]) -> np.ndarray:
        """Array ``name`` with exactly ``dtype`` (a kind letter like ``"U"`` accepts any width) and ``shape``.

        ``None`` in ``shape`` accepts any length on that axis.
        """
        if name not in self.arrays:
            raise ModelFileError(f"{self.path}: saved index lacks array {name!r}")
        a = self.arrays[name]
        if not isinstance(a, np.ndarray):
            raise self.fail(f"{name} is not an array")
        by_kind = isinstance(dtype, str) and len(dtype) == 1
        ok = a.dtype.kind == dtype if by_kind else a.dtype == np.dtype(dtype)
        if not ok or not a.dtype.isnative:
            raise self.fail(f"{name} has dtype {a.dtype}, expected {'kind ' + dtype if by_kind else np.dtype(dtype)}")
        if a.ndim != len(shape) or any(s is not None and a.shape[i] != s for i, s in enumerate(shape)):
            want = "x".join("n" if s is None else str(s) for s in shape)
            raise self.fail(f"{name} has shape {a.shape}, expected ({want})")
        return a

    def finite(self, name: str, a: np.ndarray, lo: float | None = None, strict: bool = False) -> None:
        """Every value finite (and ``> lo`` when ``strict``, else ``>= lo``)."""
        if a.size == 0:
            return
        if not np.isfinite(a).all():
            raise self.fail(f"{name} holds NaN or infinite values")
        if lo is not None:
            low = a.min()
            if low < lo or (strict and low <= lo):
                raise self.fail(f"{name} holds {low}, below the allowed minimum {lo}")

    def within(self, name: str, a: np.ndarray, lo: int, hi: int) -> None:
        """Every value in ``lo .. hi - 1``."""
        if a.size and (a.min() < lo or a.max() >= hi):
            raise self.fail(f"{name} holds values outside {lo}..{hi - 1} ({a.min()}..{a.max()})")

    def indptr(self, name: str, a: np.ndarray, nnz: int) -> None:
        """A CSR offsets array: starts at 0, never decreases, ends at ``nnz``."""
        if a.shape[0] == 0 or a[0] != 0 or a[-1] != nnz or (a.shape[0] > 1 and (np.diff(a) < 0).any()):
            raise self.fail(f"{name} is not a valid offsets array ending at {nnz}")

    def unique_ids(self, name: str, ids: np.ndarray, live: np.ndarray) -> None:
        """Live ids are non-empty and distinct."""
        alive = ids[live]
        if alive.size and (alive == "").any():
            raise self.fail(f"{name} holds an empty document id")
        if np.unique(alive).shape[0] != alive.shape[0]:
            raise self.fail(f"{name} holds the same document id twice")
