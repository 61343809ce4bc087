"""Approximate nearest-neighbour search: an HNSW graph (Malkov & Yashunin, TPAMI 2018) in faiss.

faiss (``faiss-cpu``, part of the ``dense`` extra) ships wheels, so installing it needs
no compiler. :class:`HnswGraph` offers the operations :class:`~recseek.search.dense.DenseRetriever`
needs -- build, append, mark deleted, top-k by inner product -- with rows of the
embedding matrix as labels.

Persistence never hands a library file to native code: :meth:`HnswGraph.to_arrays`
returns the graph as three plain arrays (per-node level, neighbour-list offsets,
neighbour ids) plus two numbers, saved as ``.npy`` files beside the embeddings, and
:meth:`HnswGraph.from_arrays` checks every offset and neighbour id against the
embeddings before the graph is assembled (the vectors themselves come from the
verified embeddings, not from the graph).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from .._optional import require
from ..errors import ModelFileError

__all__ = ["GRAPH_ARRAYS", "HnswGraph"]

#: Names of the arrays :meth:`HnswGraph.to_arrays` returns.
GRAPH_ARRAYS = ("ann_levels", "ann_offsets", "ann_neighbors")


def _faiss() -> Any:
    return require("faiss", purpose="approximate nearest-neighbour search (ann='hnsw')", python="use ann='exact'")


class HnswGraph:
    """An HNSW graph over inner products; labels are row numbers 0..n-1 in insertion order.

    Parameters
    ----------
    dim : vector dimension
    m : links per node (``2 m`` on the bottom level)
    ef_construction : candidate list size while building
    """

    def __init__(self, dim: int, m: int = 16, ef_construction: int = 100) -> None:
        faiss = _faiss()
        self.dim, self.m = int(dim), int(m)
        self._index = faiss.IndexHNSWFlat(self.dim, self.m, faiss.METRIC_INNER_PRODUCT)
        self._index.hnsw.efConstruction = int(ef_construction)
        self._deleted = np.zeros(0, dtype=bool)
        self.ef = 64

    def __len__(self) -> int:
        return int(self._index.ntotal)

    # ------------------------------------------------------------ changes
    def add_items(self, vectors: np.ndarray, labels: np.ndarray | None = None, num_threads: int = -1) -> None:
        """Append ``vectors`` (n, dim); their labels must continue the row numbers."""
        x = np.ascontiguousarray(vectors, dtype=np.float32)
        start = len(self)
        if labels is not None and not np.array_equal(np.asarray(labels), np.arange(start, start + x.shape[0])):
            raise ValueError("HnswGraph labels must be the next row numbers")
        if x.shape[0]:
            self._index.add(x)
        self._deleted = np.concatenate([self._deleted, np.zeros(x.shape[0], dtype=bool)])

    def resize_index(self, n: int) -> None:
        """Nothing to do: the graph grows as rows are added."""

    def mark_deleted(self, label: int) -> None:
        """Leave row ``label`` out of every later search result."""
        self._deleted[int(label)] = True

    def set_ef(self, ef: int) -> None:
        """Candidate list size while searching (at least ``k``)."""
        self.ef = int(ef)

    # ------------------------------------------------------------ search
    def knn_query(self, queries: np.ndarray, k: int = 10, num_threads: int = -1) -> tuple[np.ndarray, np.ndarray]:
        """Top-``k`` rows per query and their distances ``1 - inner product``.

        Raises RuntimeError when fewer than ``k`` live rows are found for some query
        (the caller then searches exactly).
        """
        faiss = _faiss()
        q = np.ascontiguousarray(queries, dtype=np.float32)
        params = faiss.SearchParametersHNSW()
        params.efSearch = max(self.ef, int(k))
        if self._deleted.any():
            dead = np.flatnonzero(self._deleted).astype(np.int64)
            batch = faiss.IDSelectorBatch(dead)
            params.sel = faiss.IDSelectorNot(batch)
        sims, labels = self._index.search(q, int(k), params=params)
        if (labels < 0).any():
            raise RuntimeError("the graph returned fewer neighbours than asked")
        return labels.astype(np.int64), (1.0 - sims).astype(np.float32)

    # ------------------------------------------------------------ persistence
    def to_arrays(self) -> tuple[dict[str, np.ndarray], dict[str, int]]:
        """The graph as plain arrays (see :data:`GRAPH_ARRAYS`) and its entry point and top level."""
        faiss = _faiss()
        h = self._index.hnsw
        arrays = {
            "ann_levels": faiss.vector_to_array(h.levels).astype(np.int32),
            "ann_offsets": faiss.vector_to_array(h.offsets).astype(np.int64),
            "ann_neighbors": faiss.vector_to_array(h.neighbors).astype(np.int32),
        }
        return arrays, {"entry_point": int(h.entry_point), "max_level": int(h.max_level), "m": self.m}

    @classmethod
    def from_arrays(cls, arrays: dict[str, np.ndarray], info: dict[str, Any], embeddings: np.ndarray,
                    deleted: np.ndarray, ef_search: int, where: str) -> HnswGraph:
        """Rebuild a graph saved with :meth:`to_arrays` over ``embeddings``; checked first.

        Raises :class:`~recseek.errors.ModelFileError` naming ``where`` when an array has
        the wrong type or shape, or any offset, level or neighbour id is out of range.
        """
        faiss = _faiss()
        n, dim = embeddings.shape
        levels, offsets, neighbors, entry, top, m = _checked_graph(arrays, info, n, where)
        graph = cls(dim, m)
        h = graph._index.hnsw
        per_level = faiss.vector_to_array(h.cum_nneighbor_per_level).astype(np.int64)
        if levels.size and int(levels.max()) >= per_level.size:
            raise ModelFileError(f"{where}: graph levels exceed what {m} links per node allow")
        if not np.array_equal(np.diff(offsets), per_level[levels]):
            raise ModelFileError(f"{where}: graph neighbour lists do not match the node levels")
        if n:
            graph._index.storage.add(np.ascontiguousarray(embeddings, dtype=np.float32))
        faiss.copy_array_to_vector(levels, h.levels)
        faiss.copy_array_to_vector(offsets.astype(np.uint64), h.offsets)
        faiss.copy_array_to_vector(neighbors, h.neighbors)
        h.entry_point, h.max_level = entry, top
        graph._index.ntotal = n
        graph._deleted = np.asarray(deleted, dtype=bool).copy()
        graph.set_ef(ef_search)
        return graph


def _checked_graph(arrays: dict[str, np.ndarray], info: dict[str, Any], n: int,
                   where: str) -> tuple[np.ndarray, np.ndarray, np.ndarray, int, int, int]:
    """The graph arrays and numbers, each checked against the ``n`` rows of the index."""

    def fail(msg: str) -> ModelFileError:
        return ModelFileError(f"{where}: {msg}")

    for name in GRAPH_ARRAYS:
        if name not in arrays:
            raise fail(f"the graph array {name} is missing")
    levels, offsets, neighbors = (np.asarray(arrays[a]) for a in GRAPH_ARRAYS)
    if levels.dtype != np.int32 or levels.shape != (n,):
        raise fail(f"ann_levels must be int32 of shape ({n},)")
    if offsets.dtype != np.int64 or offsets.shape != (n + 1,):
        raise fail(f"ann_offsets must be int64 of shape ({n + 1},)")
    if neighbors.dtype != np.int32 or neighbors.ndim != 1:
        raise fail("ann_neighbors must be a one-dimensional int32 array")
    if offsets[0] != 0 or offsets[-1] != neighbors.shape[0] or (np.diff(offsets) < 0).any():
        raise fail("ann_offsets do not partition ann_neighbors")
    if n and (levels.min() < 1):
        raise fail("ann_levels must be at least 1")
    if neighbors.size and (neighbors.min() < -1 or neighbors.max() >= n):
        raise fail(f"ann_neighbors link to rows outside 0..{n - 1}")
    nums = {}
    for key in ("entry_point", "max_level", "m"):
        v = info.get(key)
        if not isinstance(v, int) or isinstance(v, bool):
            raise fail(f"the graph's {key} must be an integer")
        nums[key] = v
    entry, top, m = nums["entry_point"], nums["max_level"], nums["m"]
    if m < 2 or m > 1024:
        raise fail(f"the graph's m must be in 2..1024, got {m}")
    if n == 0:
        if entry != -1 or top != -1:
            raise fail("an empty graph must have entry_point and max_level -1")
    elif not (0 <= entry < n and top == int(levels.max()) - 1 and levels[entry] == top + 1):
        raise fail("the graph's entry point is not a node of its top level")
    return levels, offsets, neighbors, entry, top, m
