"""What an experiment keeps for its report: per-user values, list popularity, timing, memory.

:func:`fold_record` turns one fold's :class:`~recseek.evaluation.protocol.RankingDetails`
into a compact JSON-ready dict (plain lists of numbers); :func:`experiment_record`
describes the experiment itself (TOML text, data hash, split, seeds, protocol);
:class:`PeakMemory` measures the peak memory of a block of code. The report
(:mod:`recseek.evaluation.report`) reads nothing else, so it can be re-made from the
``--json`` results without training again.
"""

from __future__ import annotations

import hashlib
import os
import tracemalloc
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import scipy.sparse as sp

__all__ = [
    "CURVE_CUTOFFS",
    "EXPOSURE_POINTS",
    "HEAD_SHARE",
    "TIMING_KEYS",
    "PeakMemory",
    "curve_cutoffs",
    "data_fingerprint",
    "experiment_record",
    "fold_record",
    "timing_record",
]

#: List lengths of the metric@k curves (those up to ``max(k, 20)`` are used, plus ``k``).
CURVE_CUTOFFS = (1, 2, 3, 5, 10, 15, 20)
#: Items in the popularity head: the most popular ``HEAD_SHARE`` of the catalogue
#: (by training users); every other item is in the long tail.
HEAD_SHARE = 0.2
#: Points of the long-tail exposure curve (catalogue shares 0, 1/(P-1), ..., 1).
EXPOSURE_POINTS = 101


#: What each fold record holds about cost (seconds; bytes above the memory in use when
#: the step began, and the process's peak during it).
TIMING_KEYS = ("fit_seconds", "predict_seconds", "fit_peak_bytes", "predict_peak_bytes",
               "fit_peak_total_bytes", "predict_peak_total_bytes", "memory_method")


def timing_record(fit_seconds: float, predict_seconds: float, fit: PeakMemory, predict: PeakMemory) -> dict[str, Any]:
    """The cost part of a fold record (see :data:`TIMING_KEYS`)."""
    return {"fit_seconds": fit_seconds, "predict_seconds": predict_seconds,
            "fit_peak_bytes": fit.peak_bytes, "predict_peak_bytes": predict.peak_bytes,
            "fit_peak_total_bytes": fit.peak_total_bytes, "predict_peak_total_bytes": predict.peak_total_bytes,
            "memory_method": fit.method}


def curve_cutoffs(k: int) -> list[int]:
    """Cutoffs of the metric@k curves for an experiment with list length ``k``."""
    top = max(k, CURVE_CUTOFFS[-1])
    return sorted({c for c in CURVE_CUTOFFS if c <= top} | {k})


def data_fingerprint(data: Any) -> str:
    """SHA-256 of an :class:`~recseek.data.Interactions` (matrix, timestamps and raw ids).

    Two data sets have the same fingerprint exactly when they hold the same
    interactions with the same values, timestamps and user and item ids in the same order.
    """
    m = sp.csr_array(data.matrix)
    h = hashlib.sha256()
    h.update(np.asarray(m.shape, dtype="<i8").tobytes())
    for part in (m.indptr, m.indices):
        h.update(np.ascontiguousarray(part, dtype="<i8").tobytes())
    h.update(np.ascontiguousarray(m.data, dtype="<f8").tobytes())
    if data.timestamps is not None:
        h.update(np.ascontiguousarray(data.timestamps, dtype="<f8").tobytes())
    for vocab in (data.users, data.items):
        for raw in vocab.lookup(np.arange(len(vocab))):
            h.update(str(raw).encode("utf-8") + b"\x00")
    return h.hexdigest()


def experiment_record(exp: Any, data: Any, folds: list[tuple[Any, Any]]) -> dict[str, Any]:
    """The experiment as run: TOML text, data hash and size, split, evaluation, seeds, protocol."""
    from .. import __version__
    from .experiment import protocol_name

    toml = ""
    if exp.source != "<config>" and Path(exp.source).is_file():
        toml = Path(exp.source).read_text(encoding="utf-8")
    ev = exp.evaluation
    split = dict(exp.split)
    seeds = {"split": split.get("seed", None if split["method"] == "temporal" else 0)}
    if ev.get("sampled") is not None:
        seeds["sampled negatives"] = ev.get("seed", 0)
    return {
        "source": exp.source,
        "toml": toml,
        "data": dict(exp.data),
        "data_sha256": data_fingerprint(data),
        "n_users": int(data.n_users),
        "n_items": int(data.n_items),
        "n_interactions": int(data.nnz),
        "split": split,
        "folds": [{"train": int(tr.nnz), "test": int(te.nnz)} for tr, te in folds],
        "evaluation": dict(ev),
        "protocol": protocol_name(ev),
        "seeds": seeds,
        "recseek_version": __version__,
    }


def _popularity_head(pop: np.ndarray) -> np.ndarray:
    """Bool mask of head items: the ``HEAD_SHARE`` most popular (ties by lower index)."""
    n_head = int(np.ceil(HEAD_SHARE * pop.size))
    order = np.lexsort((np.arange(pop.size), -pop))
    head = np.zeros(pop.size, dtype=bool)
    head[order[:n_head]] = True
    return head


def _exposure_curve(pop: np.ndarray, exposure: np.ndarray) -> tuple[list[float], list[float]]:
    """Cumulative share of recommended slots and of training interactions held by the
    most popular x share of the catalogue, at :data:`EXPOSURE_POINTS` catalogue shares."""
    order = np.lexsort((np.arange(pop.size), -pop))
    x = np.linspace(0.0, 1.0, EXPOSURE_POINTS)
    n_top = np.round(x * pop.size).astype(np.int64)
    out = []
    for counts in (exposure, pop):
        cum = np.concatenate([[0.0], np.cumsum(counts[order], dtype=np.float64)])
        total = cum[-1]
        out.append((cum[n_top] / total if total > 0 else np.zeros_like(x)).tolist())
    return out[0], out[1]


def fold_record(details: Any, train: Any, k: int, timing: Mapping[str, float | str]) -> dict[str, Any]:
    """One fold of one model, ready for JSON.

    Parameters
    ----------
    details : RankingDetails
        From ``evaluate_ranking(..., per_user=True, cutoffs=curve_cutoffs(k))``.
    train : Interactions
        The fold's training data (user activity and item popularity come from it).
    k : int
        The experiment's list length.
    timing : mapping
        From :func:`timing_record`.
    """
    from ..metrics import beyond as bm

    m = sp.csr_array(train.matrix)
    pop = np.bincount(m.indices, minlength=m.shape[1]).astype(np.int64)
    activity = np.diff(m.indptr)[details.users]
    ids = details.ids[:, :k]
    valid = ids >= 0
    safe = np.where(valid, ids, 0)
    n_shown = valid.sum(axis=1)
    head = _popularity_head(pop)
    with np.errstate(invalid="ignore", divide="ignore"):
        list_pop = np.where(n_shown > 0, np.where(valid, pop[safe], 0).sum(axis=1) / n_shown, 0.0)
        list_tail = np.where(n_shown > 0, (valid & ~head[safe]).sum(axis=1) / n_shown, 0.0)
    exposure = np.bincount(ids[valid], minlength=m.shape[1])
    shown = np.flatnonzero(exposure)
    exp_curve, data_curve = _exposure_curve(pop, exposure)
    return {
        **{key: timing[key] for key in TIMING_KEYS},
        "n_users": int(m.shape[0]),
        "users": details.users.tolist(),
        "activity": activity.tolist(),
        "n_relevant": details.n_relevant.tolist(),
        "per_user": {key: v.tolist() for key, v in details.per_user.items()},
        "curves": {str(c): dict(v) for c, v in details.curves.items()},
        "popularity": {
            "per_user_mean": list_pop.tolist(),
            "per_user_long_tail": list_tail.tolist(),
            "head_items": int(head.sum()),
            "gini": bm.gini(ids, m.shape[1]),
            "coverage": bm.coverage(ids, m.shape[1]),
            "exposure_curve": exp_curve,
            "interaction_curve": data_curve,
            "recommended_items": shown.tolist(),
            "recommended_counts": exposure[shown].tolist(),
        },
    }


def _rss_kib(field_name: str) -> int | None:
    try:
        with open("/proc/self/status", encoding="ascii") as f:
            for line in f:
                if line.startswith(field_name + ":"):
                    return int(line.split()[1])
    except OSError:
        return None
    return None


class PeakMemory:
    """Peak memory of a ``with`` block, in bytes above the memory in use when it began.

    On Linux the process's peak resident set (``VmHWM``) is reset on entry (writing
    ``5`` to ``/proc/self/clear_refs``) and read on exit, so native memory (numba
    kernels, BLAS) counts; :attr:`method` is then ``"rss"``. Elsewhere the peak of
    Python-tracked allocations (:mod:`tracemalloc`, numpy arrays included) is used
    and :attr:`method` is ``"tracemalloc"``.
    """

    def __init__(self) -> None:
        #: peak above the memory in use on entry
        self.peak_bytes = 0
        #: peak of the whole process (``"rss"``) or of all traced allocations
        self.peak_total_bytes = 0
        self.method = "rss"
        self._start = 0

    def __enter__(self) -> PeakMemory:
        self._start = _rss_kib("VmRSS") or 0
        try:
            fd = os.open("/proc/self/clear_refs", os.O_WRONLY)
            try:
                os.write(fd, b"5")
            finally:
                os.close(fd)
        except OSError:
            self.method = "tracemalloc"
        if self.method == "rss" and _rss_kib("VmHWM") is None:
            self.method = "tracemalloc"
        if self.method == "tracemalloc":
            self._was_tracing = tracemalloc.is_tracing()
            if not self._was_tracing:
                tracemalloc.start()
            tracemalloc.reset_peak()
            self._start = tracemalloc.get_traced_memory()[0]
        return self

    def __exit__(self, *exc: object) -> None:
        if self.method == "rss":
            self.peak_total_bytes = (_rss_kib("VmHWM") or 0) * 1024
            self.peak_bytes = max(0, self.peak_total_bytes - self._start * 1024)
        else:
            self.peak_total_bytes = tracemalloc.get_traced_memory()[1]
            self.peak_bytes = max(0, self.peak_total_bytes - self._start)
            if not self._was_tracing:
                tracemalloc.stop()
