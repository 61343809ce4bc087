"""Hybrid retrieval: fusing the ranked lists of several retrievers.

Two fusion rules, both vectorised over a whole batch of queries:

- reciprocal rank fusion (Cormack, Clarke & Buettcher 2009): a document's score is
  ``sum_r w_r / (rrf_k + rank_r)`` over the lists it appears in (rank from 1);
- convex combination (Bruch, Gai & Ingber 2023, "An Analysis of Fusion Functions for
  Hybrid Retrieval"): ``sum_r w_r * norm_r(score)``, each list's scores normalised per
  query by min-max or z-score; a document missing from a list gets that list's lowest
  normalised score for the query.

:meth:`HybridRetriever.tune_alpha` picks the weight of the first of two retrievers from
a few labelled queries by maximising nDCG@10.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import threading
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import DataError, ModelFileError, ParameterError
from ..models._params import Choice, Float, Int
from .base import Document, Hits, as_doc_ids, check_k

__all__ = ["HybridRetriever", "rrf", "convex", "load_retriever"]

NORMALIZERS = ("minmax", "zscore")


# ---------------------------------------------------------------------- fusion
def _check_hits_list(hits_list: Sequence[Hits]) -> int:
    if not hits_list:
        raise ParameterError("fusion needs at least one list of hits")
    nq = {len(h) for h in hits_list}
    if len(nq) != 1:
        raise ParameterError(f"the hits to fuse cover different numbers of queries: {sorted(nq)}")
    return nq.pop()


def _check_weights(weights: Sequence[float] | None, n: int) -> np.ndarray:
    if weights is None:
        return np.ones(n, dtype=np.float64)
    w = np.asarray(weights, dtype=np.float64)
    if w.shape != (n,):
        raise ParameterError(f"weights must give one number per retriever ({n}), got {list(np.atleast_1d(w))}")
    if not np.all(np.isfinite(w)) or (w < 0).any() or not (w > 0).any():
        raise ParameterError(f"weights must be non-negative with at least one positive, got {w.tolist()}")
    return w


def _normalize(scores: np.ndarray, valid: np.ndarray, how: str) -> tuple[np.ndarray, np.ndarray]:
    """Per-row normalised scores over the valid entries and each row's floor (lowest value)."""
    s = np.where(valid, scores, np.nan).astype(np.float64)
    has = valid.any(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        if how == "minmax":
            lo = np.nanmin(np.where(has[:, None], s, 0.0), axis=1)
            hi = np.nanmax(np.where(has[:, None], s, 0.0), axis=1)
            span = hi - lo
            out = np.where(span[:, None] > 0, (s - lo[:, None]) / np.where(span > 0, span, 1.0)[:, None], 1.0)
        elif how == "zscore":
            mean = np.nanmean(np.where(has[:, None], s, 0.0), axis=1)
            std = np.nanstd(np.where(has[:, None], s, 0.0), axis=1)
            out = np.where(std[:, None] > 0, (s - mean[:, None]) / np.where(std > 0, std, 1.0)[:, None], 0.0)
        else:
            raise ParameterError(f"normalize must be one of {', '.join(NORMALIZERS)}, got {how!r}")
    out = np.where(valid, out, np.nan)
    floor = np.where(has, np.nanmin(np.where(has[:, None], out, 0.0), axis=1), 0.0)
    return np.where(valid, out, 0.0), floor


def _fuse(hits_list: Sequence[Hits], contributions: list[np.ndarray], base: np.ndarray, k: int | None) -> Hits:
    """Sum ``contributions[r][q, j]`` per (query, document id); add ``base[q]``; keep top k."""
    nq = hits_list[0].ids.shape[0]
    qs, docs, vals = [], [], []
    for h, c in zip(hits_list, contributions, strict=True):
        valid = h.ids != ""
        q, _ = np.nonzero(valid)
        qs.append(q)
        docs.append(h.ids[valid].astype(str))
        vals.append(c[valid])
    q = np.concatenate(qs)
    d = np.concatenate(docs) if docs else np.zeros(0, dtype="<U1")
    v = np.concatenate(vals).astype(np.float64)
    # a fused list never holds more documents than the lists it fuses (a huge k allocates nothing)
    most = sum(h.ids.shape[1] for h in hits_list)
    width = max(min(int(k), most) if k is not None else most, 1)
    out_ids = np.full((nq, width), "", dtype=d.dtype if d.size else "<U1")
    out_scores = np.full((nq, width), -np.inf, dtype=np.float32)
    if not d.size:
        return Hits(out_ids, out_scores)
    names, code = np.unique(d, return_inverse=True)
    key = q.astype(np.int64) * len(names) + code.ravel()
    ukey, inv = np.unique(key, return_inverse=True)
    total = np.bincount(inv.ravel(), weights=v, minlength=len(ukey))
    uq, ucode = ukey // len(names), ukey % len(names)
    total = total + base[uq]
    # by query, then score descending, then id (deterministic ties)
    order = np.lexsort((ucode, -total, uq))
    uq, ucode, total = uq[order], ucode[order], total[order]
    starts = np.searchsorted(uq, np.arange(nq))
    pos = np.arange(len(uq)) - starts[uq]
    keep = pos < width
    out_ids[uq[keep], pos[keep]] = names[ucode[keep]]
    out_scores[uq[keep], pos[keep]] = total[keep]
    return Hits(out_ids, out_scores)


def rrf(hits_list: Sequence[Hits], k: int | None = None, *, rrf_k: float = 60.0,
        weights: Sequence[float] | None = None) -> Hits:
    """Reciprocal rank fusion of several result lists for the same queries.

    Parameters
    ----------
    hits_list : list of Hits, each (n_queries, depth_r)
    k : int, optional
        Results kept per query (default: every fused document).
    rrf_k : float
        The rank offset (60 in Cormack et al. 2009).
    weights : list of float, optional
        One weight per list (default all 1).
    """
    _check_hits_list(hits_list)
    Float(lo=0.0).check("rrf", "rrf_k", rrf_k)
    w = _check_weights(weights, len(hits_list))
    contrib = []
    for h, wr in zip(hits_list, w, strict=True):
        rank = np.arange(1, h.ids.shape[1] + 1, dtype=np.float64)
        contrib.append(np.broadcast_to(wr / (rrf_k + rank), h.ids.shape))
    return _fuse(hits_list, contrib, np.zeros(len(hits_list[0])), None if k is None else check_k(k))


def convex(hits_list: Sequence[Hits], weights: Sequence[float] | None = None, normalize: str = "minmax",
           k: int | None = None) -> Hits:
    """Convex combination of per-query normalised scores (``"minmax"`` or ``"zscore"``).

    A document absent from one list receives that list's lowest normalised score for the
    query (0 under min-max), so fused scores compare across documents. ``weights`` are
    used as given (normalise them to sum to 1 for a convex combination); default equal.
    """
    _check_hits_list(hits_list)
    Choice(NORMALIZERS).check("convex", "normalize", normalize)
    w = _check_weights(weights, len(hits_list))
    contrib = []
    base = np.zeros(len(hits_list[0]), dtype=np.float64)
    for h, wr in zip(hits_list, w, strict=True):
        norm, floor = _normalize(np.asarray(h.scores), h.ids != "", normalize)
        contrib.append(wr * (norm - floor[:, None]))
        base += wr * floor
    return _fuse(hits_list, contrib, base, None if k is None else check_k(k))


# ---------------------------------------------------------------------- evaluation
def _qrels_list(qrels: Sequence[Mapping[str, float]] | Mapping[Any, Mapping[str, float]], n: int) -> list[dict]:
    if isinstance(qrels, Mapping):
        out = [dict(qrels.get(i, {}) or {}) for i in range(n)]
    else:
        out = [dict(q or {}) for q in qrels]
        if len(out) != n:
            raise ParameterError(f"qrels must give one mapping per query ({n}), got {len(out)}")
    return [{str(d): float(g) for d, g in q.items()} for q in out]


def mean_ndcg(hits: Hits, qrels: Sequence[Mapping[str, float]], k: int = 10) -> float:
    """Mean nDCG@k (linear gains, queries without relevant documents left out)."""
    from .metrics import evaluate

    return evaluate(hits.ids, qrels, [f"ndcg@{k}"])[f"ndcg@{k}"]


# ---------------------------------------------------------------------- retriever
class HybridRetriever:
    """Fuses the results of several retrievers (e.g. BM25 + dense).

    Parameters
    ----------
    retrievers : list of retrievers
        Each with ``index/add/delete/search/save``; they index the same documents.
    method : {"rrf", "convex"}
    rrf_k : float
        Rank offset of reciprocal rank fusion.
    weights : list of float, optional
        One weight per retriever (default equal); :meth:`tune_alpha` sets learned ones.
    normalize : {"minmax", "zscore"}
        Score normalisation of the convex combination.
    depth : int
        Results fetched from each retriever per query before fusing.
    """

    rules = {"method": Choice(("rrf", "convex")), "rrf_k": Float(lo=0.0), "normalize": Choice(NORMALIZERS),
             "depth": Int(lo=1)}

    def __init__(self, retrievers: Sequence[Any], method: str = "rrf", rrf_k: float = 60.0,
                 weights: Sequence[float] | None = None, normalize: str = "minmax", depth: int = 100) -> None:
        self.retrievers = list(retrievers)
        self.method = method
        self.rrf_k = rrf_k
        self.weights = None if weights is None else [float(w) for w in weights]
        self.normalize = normalize
        self.depth = depth
        for name, rule in self.rules.items():
            rule.check("HybridRetriever", name, getattr(self, name))
        if not self.retrievers:
            raise ParameterError("HybridRetriever: retrievers must name at least one retriever")
        for r in self.retrievers:
            if not callable(getattr(r, "search", None)):
                raise ParameterError(f"HybridRetriever: {type(r).__name__} has no search method")
        _check_weights(self.weights, len(self.retrievers))
        # an update reaches every part before a fused search reads them (parts are thread-safe alone)
        self._lock = threading.RLock()

    def __repr__(self) -> str:
        names = ", ".join(type(r).__name__ for r in self.retrievers)
        return f"HybridRetriever([{names}], method={self.method!r})"

    @property
    def effective_weights(self) -> np.ndarray:
        w = getattr(self, "weights_", None)
        return _check_weights(w if w is not None else self.weights, len(self.retrievers))

    # ------------------------------------------------------------ building
    def index(self, docs: Iterable[Document | Mapping[str, Any]]) -> None:
        docs = list(docs)
        with self._lock:
            for r in self.retrievers:
                r.index(docs)

    def add(self, docs: Iterable[Document | Mapping[str, Any]]) -> None:
        docs = list(docs)
        with self._lock:
            for r in self.retrievers:
                r.add(docs)

    def delete(self, ids: Sequence[str] | str) -> None:
        """Delete documents by id (strings, or integers as ``index`` accepts) from every retriever."""
        ids = as_doc_ids(ids, "delete")
        with self._lock:
            for r in self.retrievers:
                r.delete(ids)

    # ------------------------------------------------------------ searching
    def retrieve_all(self, queries: str | Sequence[str], depth: int | None = None, *,
                     filter: Mapping[str, Any] | None = None) -> list[Hits]:
        """Each retriever's own hits (``depth`` per query, default ``self.depth``)."""
        d = check_k(self.depth if depth is None else depth)
        with self._lock:
            return [r.search(queries, k=d, filter=filter) for r in self.retrievers]

    def fuse(self, hits_list: Sequence[Hits], k: int | None = None, weights: Sequence[float] | None = None) -> Hits:
        """Fuse already retrieved lists with this retriever's method and settings."""
        w = self.effective_weights if weights is None else weights
        if self.method == "rrf":
            return rrf(hits_list, k, rrf_k=self.rrf_k, weights=w)
        return convex(hits_list, w, self.normalize, k)

    def search(self, queries: str | Sequence[str], k: int = 10, *,
               filter: Mapping[str, Any] | None = None) -> Hits:
        """Top-``k`` fused documents per query (``k`` clipped to the largest retriever's document count)."""
        k = check_k(k)
        sizes = [len(r) for r in self.retrievers if callable(getattr(r, "__len__", None))]
        if sizes:
            k = max(1, min(k, max(sizes)))
        return self.fuse(self.retrieve_all(queries, max(self.depth, k), filter=filter), k)

    def tune_alpha(self, queries: Sequence[str], qrels: Sequence[Mapping[str, float]] | Mapping[int, Mapping[str, float]],
                   grid: Sequence[float] | None = None, k: int = 10) -> float:
        """Choose the first retriever's weight ``alpha`` (the second gets ``1 - alpha``).

        Every ``alpha`` of ``grid`` (default 0, 0.05, ..., 1) is scored by mean nDCG@``k``
        over ``queries`` (``qrels[q]``: document id -> gain); the best is kept in
        ``alpha_``/``weights_`` and returned. Ties prefer the alpha nearest 0.5.
        """
        if len(self.retrievers) != 2:
            raise ParameterError(f"tune_alpha needs exactly two retrievers, this hybrid has {len(self.retrievers)}")
        queries = [queries] if isinstance(queries, str) else list(queries)
        if not queries:
            raise ParameterError("tune_alpha needs at least one labelled query")
        grid_arr = np.round(np.linspace(0.0, 1.0, 21), 4) if grid is None else np.asarray(grid, dtype=np.float64)
        if grid_arr.ndim != 1 or not grid_arr.size or (grid_arr < 0).any() or (grid_arr > 1).any():
            raise ParameterError("grid must be a non-empty list of numbers in [0, 1]")
        rel = _qrels_list(qrels, len(queries))
        if not any(any(g > 0 for g in q.values()) for q in rel):
            raise DataError("tune_alpha: none of the queries has a relevant document in qrels")
        lists = self.retrieve_all(queries, max(self.depth, k))
        means = []
        for a in grid_arr:
            fused = self.fuse(lists, k, weights=[a, 1.0 - a])
            means.append(mean_ndcg(fused, rel, k))
        means_arr = np.asarray(means)
        best = np.flatnonzero(means_arr >= means_arr.max() - 1e-12)
        pick = best[np.argmin(np.abs(grid_arr[best] - 0.5))]
        self.alpha_ = float(grid_arr[pick])
        self.weights_ = [self.alpha_, 1.0 - self.alpha_]
        self.tuning_ = {"grid": grid_arr.tolist(), f"ndcg@{k}": means}
        return self.alpha_

    # ------------------------------------------------------------ persistence
    def get_params(self) -> dict[str, Any]:
        return {"method": self.method, "rrf_k": self.rrf_k, "weights": self.weights, "normalize": self.normalize,
                "depth": self.depth}

    def save(self, path: str | os.PathLike) -> Path:
        """Save the settings (``manifest.json``) and each retriever in ``part<i>/``."""
        extra = {"weights_": getattr(self, "weights_", None)}
        return save_composite(path, "HybridRetriever", self.get_params(), self.retrievers, extra)

    @classmethod
    def load(cls, path: str | os.PathLike, **kwargs: Any) -> HybridRetriever:
        """Load a saved hybrid; ``kwargs`` (e.g. ``encoder=``) reach the parts that accept them."""
        manifest, parts = load_composite(path, "HybridRetriever", **kwargs)
        obj = cls(parts, **manifest["params"])
        if manifest.get("extra", {}).get("weights_") is not None:
            obj.weights_ = list(manifest["extra"]["weights_"])
            obj.alpha_ = obj.weights_[0]
        return obj


# ---------------------------------------------------------------------- composites on disk
def save_composite(path: str | os.PathLike, name: str, params: dict[str, Any], parts: Sequence[Any],
                   extra: dict[str, Any] | None = None, arrays: dict[str, np.ndarray] | None = None) -> Path:
    """Save ``parts`` (each with ``save``) into ``path/part<i>`` next to a manifest.

    Parts are written to a temporary sibling first, so a failing part leaves no bundle.
    """
    from .. import __version__
    from ..persistence import write_bundle

    path = Path(path)
    parent = path.parent if str(path.parent) else Path(".")
    if not parent.exists():
        raise ModelFileError(f"cannot save to {path}: directory {parent} does not exist")
    tmp = Path(tempfile.mkdtemp(prefix=f".{path.name}.parts.", dir=parent))
    try:
        kinds = []
        for i, p in enumerate(parts):
            if not callable(getattr(p, "save", None)):
                raise ModelFileError(f"cannot save {name}: part {i} ({type(p).__name__}) has no save method")
            p.save(tmp / f"part{i}")
            kinds.append({"module": type(p).__module__, "class": type(p).__qualname__})
        manifest = {"kind": "search-index", "retriever": name, "params": params, "parts": kinds,
                    "extra": extra or {}, "recseek_version": __version__}
        write_bundle(path, arrays or {}, manifest)
        for i in range(len(parts)):
            os.replace(tmp / f"part{i}", path / f"part{i}")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return path


def load_retriever(path: str | os.PathLike, **kwargs: Any) -> Any:
    """Load any saved recseek retriever (lexical, dense, passage or hybrid)."""
    from ..persistence import read_manifest

    manifest = read_manifest(path)
    if manifest.get("kind") != "search-index":
        raise ModelFileError(f"{path} holds a {manifest.get('kind')!r}, not a search index")
    name = manifest.get("retriever")
    if name in ("BM25", "TFIDF"):
        from .lexical import LexicalRetriever

        return LexicalRetriever.load(path, **_accepted(LexicalRetriever.load, kwargs))
    if name == "DenseRetriever":
        from .dense import DenseRetriever

        return DenseRetriever.load(path, **_accepted(DenseRetriever.load, kwargs))
    if name == "HybridRetriever":
        return HybridRetriever.load(path, **kwargs)
    if name == "PassageRetriever":
        from .passages import PassageRetriever

        return PassageRetriever.load(path, **kwargs)
    raise ModelFileError(f"{path}: unknown retriever {name!r}")


def _accepted(fn: Any, kwargs: dict[str, Any]) -> dict[str, Any]:
    import inspect

    params = inspect.signature(fn).parameters
    return {k: v for k, v in kwargs.items() if k in params}


def load_composite(path: str | os.PathLike, name: str, **kwargs: Any) -> tuple[dict[str, Any], list[Any]]:
    """Read a composite's manifest and load its parts."""
    from ..persistence import read_manifest

    path = Path(path)
    manifest = read_manifest(path)
    if manifest.get("kind") != "search-index" or manifest.get("retriever") != name:
        raise ModelFileError(f"{path} does not hold a {name} index")
    parts = []
    for i, kind in enumerate(manifest.get("parts", [])):
        module = str(kind.get("module", ""))
        if not module.startswith("recseek."):
            raise ModelFileError(
                f"{path}: part {i} is a {module}.{kind.get('class')}, not a recseek retriever; "
                "load it yourself and build the composite from the loaded parts"
            )
        parts.append(load_retriever(path / f"part{i}", **kwargs))
    return manifest, parts
