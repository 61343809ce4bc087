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


#: hnswlib's index header: offsetLevel0, max_elements, cur_element_count, size_data_per_element,
#: label_offset, offsetData (size_t), maxlevel (int), enterpoint_node (uint32), maxM, maxM0, M (size_t),
#: mult (double), ef_construction (size_t).
_HNSW_HEADER = np.dtype([("offset_level0", "<u8"), ("max_elements", "<u8"), ("count", "<u8"), ("element_size", "<u8"),
                         ("label_offset", "<u8"), ("data_offset", "<u8"), ("max_level", "<i4"), ("entry", "<u4"),
                         ("max_m", "<u8"), ("max_m0", "<u8"), ("m", "<u8"), ("mult", "<f8"), ("ef_construction", "<u8")])


def check_hnsw(f: IndexFile, name: str, blob: np.ndarray, embeddings: np.ndarray, m: int) -> None:
    """Check an hnswlib graph file before hnswlib reads it (hnswlib trusts its files completely).

    The header must match the embeddings (count, dimension) and ``m``; every neighbour id in
    every level must be a valid element, every label a row, and the vectors stored in the
    graph must equal the index's embeddings.
    """
    n, dim = embeddings.shape
    raw = np.asarray(blob)
    if raw.dtype != np.uint8 or raw.ndim != 1 or raw.shape[0] < _HNSW_HEADER.itemsize:
        raise f.fail(f"{name} is not an hnswlib graph")
    h = np.frombuffer(raw[: _HNSW_HEADER.itemsize].tobytes(), dtype=_HNSW_HEADER)[0]
    links0 = 4 + 4 * int(h["max_m0"])
    expected = {"offset_level0": 0, "count": n, "m": m, "max_m": m, "max_m0": 2 * m, "data_offset": links0,
                "label_offset": links0 + 4 * dim, "element_size": links0 + 4 * dim + 8}
    wrong = [k for k, v in expected.items() if int(h[k]) != v]
    if wrong or int(h["max_elements"]) < n or not (n == 0 or 0 <= int(h["entry"]) < n) or not -1 <= int(h["max_level"]) < 64:
        raise f.fail(f"{name} has a header that does not match the index ({', '.join(wrong) or 'limits'})")
    start, size = _HNSW_HEADER.itemsize, int(h["element_size"])
    end0 = start + n * size
    if raw.shape[0] < end0:
        raise f.fail(f"{name} is truncated")
    level0 = raw[start:end0].reshape(n, size)
    _check_links(f, name, level0[:, :links0], int(h["max_m0"]), n)
    labels = np.ascontiguousarray(level0[:, links0 + 4 * dim :]).view("<u8").ravel()
    if n and not np.array_equal(np.sort(labels), np.arange(n, dtype=np.uint64)):
        raise f.fail(f"{name} labels are not the rows 0..{n - 1}")
    vectors = np.ascontiguousarray(level0[:, links0 : links0 + 4 * dim]).view("<f4")
    if n and not np.array_equal(vectors, np.asarray(embeddings)[labels.astype(np.int64)]):
        raise f.fail(f"{name} holds vectors that differ from the embeddings")
    _check_upper_levels(f, name, raw, end0, n, int(h["max_m"]), int(h["max_level"]))


def _check_links(f: IndexFile, name: str, block: np.ndarray, width: int, n: int) -> None:
    """Link lists (rows of ``4 + 4 * width`` bytes: uint16 count, flags, then ids): counts and ids in range."""
    counts = np.ascontiguousarray(block[:, :2]).view("<u2").ravel().astype(np.int64)
    ids = np.ascontiguousarray(block[:, 4:]).view("<u4").reshape(block.shape[0], width)
    if (counts > width).any():
        raise f.fail(f"{name} has a link list longer than its capacity")
    used = np.arange(width)[None, :] < counts[:, None]
    if used.any() and int(ids[used].max()) >= n:
        raise f.fail(f"{name} links to an element that does not exist")


def _check_upper_levels(f: IndexFile, name: str, raw: np.ndarray, pos: int, n: int, max_m: int, max_level: int) -> None:
    """The per-element link lists of levels 1 and up, which follow level 0 and end the file."""
    per_level = 4 + 4 * max_m
    size_bytes = raw.tobytes()[pos:] if raw.shape[0] > pos else b""
    offset, blocks, top = 0, [], 0
    for _ in range(n):
        if offset + 4 > len(size_bytes):
            raise f.fail(f"{name} is truncated")
        size = int.from_bytes(size_bytes[offset : offset + 4], "little")
        offset += 4
        if size % per_level or size // per_level > max_level or offset + size > len(size_bytes):
            raise f.fail(f"{name} has a malformed upper-level link list")
        if size:
            blocks.append(size_bytes[offset : offset + size])
            top = max(top, size // per_level)
        offset += size
    if offset != len(size_bytes) or top != max(max_level, 0):
        raise f.fail(f"{name} has trailing bytes or a wrong top level")
    if blocks:
        upper = np.frombuffer(b"".join(blocks), dtype=np.uint8).reshape(-1, per_level)
        _check_links(f, name, upper, max_m, n)
