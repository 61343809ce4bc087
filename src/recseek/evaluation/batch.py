"""Batch scoring: the top-k items of many users from a saved model, written to one file.

``recseek score MODEL --users FILE --out FILE`` reads raw user ids (one per line; a
header line ``user`` and lines starting with ``#`` are ignored), recommends ``k`` items
for each from the model saved in ``MODEL`` (a version folder written by ``save``), and
writes ``user,rank,item,score`` rows (CSV, or TSV when the name ends in ``.tsv``) in the
order of the input. The file appears only when complete (written beside, then renamed).
With ``backend="ray"`` the users are scored by a pool of Ray actors each holding the
loaded model (:mod:`recseek.distributed`): the same items in the same order, with scores
equal to float32 rounding (matrix products on another number of threads may differ in
the last bit).
"""

from __future__ import annotations

import csv
import os
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import DataError, ParameterError

__all__ = ["read_user_ids", "score_file", "write_rankings"]

#: Users recommended for at once (bounds the score matrix held in memory).
BLOCK_USERS = 4096


def read_user_ids(path: str | Path) -> list[str]:
    """Raw user ids of ``path``, one per line (blank lines, ``#`` comments and a ``user`` header skipped)."""
    p = Path(path)
    if not p.is_file():
        raise DataError(f"users file {p} does not exist")
    try:
        lines = p.read_text(encoding="utf-8").splitlines()
    except UnicodeDecodeError:
        raise DataError(f"users file {p} is not UTF-8 text") from None
    out: list[str] = []
    for n, line in enumerate(lines, start=1):
        text = line.strip()
        if not text or text.startswith("#") or (n == 1 and text.lower() in ("user", "user_id")):
            continue
        if any(c in text for c in ",\t") or " " in text:
            raise DataError(f"{p}, line {n}: expected one user id per line, got {text[:40]!r}")
        out.append(text)
    if not out:
        raise DataError(f"users file {p} lists no user id")
    return out


def user_indices(model: Any, raw: list[str], skip_unknown: bool, where: str) -> tuple[list[str], np.ndarray]:
    """Indices of the raw ids in the model's user vocabulary (unknown ids: error or dropped)."""
    idx = model.users_.indices(raw, missing="negative")
    known = idx >= 0
    if not known.all() and not skip_unknown:
        first = raw[int(np.flatnonzero(~known)[0])]
        raise DataError(f"{where}: {int((~known).sum())} user id(s) are not in the model's training data "
                        f"(first: {first!r}); pass --skip-unknown to leave them out")
    if not known.any():
        raise DataError(f"{where}: none of the user ids is in the model's training data")
    return [r for r, k in zip(raw, known, strict=True) if k], idx[known]


def recommend_blocks(model: Any, users: np.ndarray, k: int, exclude_seen: bool = True) -> tuple[np.ndarray, np.ndarray]:
    """``(item indices, scores)``, shape (len(users), k), in blocks of :data:`BLOCK_USERS`."""
    ids = np.full((len(users), k), -1, dtype=np.int64)
    scores = np.full((len(users), k), np.nan, dtype=np.float32)
    for start in range(0, len(users), BLOCK_USERS):
        r = model.recommend(users[start:start + BLOCK_USERS], k, exclude_seen=exclude_seen)
        ids[start:start + len(r.ids)] = r.ids
        scores[start:start + len(r.ids)] = r.scores
    return ids, scores


def write_rankings(path: str | Path, users: list[str], items: np.ndarray, scores: np.ndarray,
                   item_vocab: Any) -> int:
    """Write ``user,rank,item,score`` rows atomically; returns the number of rows."""
    out = Path(path)
    if out.exists() and out.is_dir():
        raise ParameterError(f"--out {out} is a folder; give a file name")
    if not out.parent.exists():
        raise DataError(f"the folder of --out {out} does not exist")
    delimiter = "\t" if out.suffix.lower() == ".tsv" else ","
    # the columns are built whole (valid ids are a prefix of each row: -1 pads the end)
    valid = np.asarray(items) >= 0
    raw_items = item_vocab.lookup(np.asarray(items)[valid]).tolist()
    ranks = np.cumsum(valid, axis=1)[valid].tolist()
    user_col = np.repeat(np.asarray(users, dtype=object), valid.sum(axis=1)).tolist()
    score_col = [repr(s) for s in np.asarray(scores)[valid].astype(np.float64).tolist()]
    fd, tmp = tempfile.mkstemp(prefix=f".{out.name}.", dir=out.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="") as f:
            w = csv.writer(f, delimiter=delimiter, lineterminator="\n")
            w.writerow(["user", "rank", "item", "score"])
            w.writerows(zip(user_col, ranks, raw_items, score_col, strict=True))
        os.replace(tmp, out)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return len(score_col)


def score_file(model_dir: str | Path, users_file: str | Path, out: str | Path, k: int = 10, *,
               backend: str = "local", workers: int | None = None, address: str | None = None,
               skip_unknown: bool = False, exclude_seen: bool = True,
               timings: dict[str, Any] | None = None) -> dict[str, Any]:
    """Score every user of ``users_file`` with the model in ``model_dir`` into ``out``.

    Returns ``{"users", "rows", "backend"}``. See the module docstring for the formats.
    ``timings``, when given, receives the wall seconds of each step (``read``, ``load``,
    ``score``, ``write``), this process's CPU seconds while scoring (``score_cpu``, every
    thread) and, with Ray, where the scoring time went (``ray``: see
    :func:`recseek.distributed.ray_recommend`).
    """
    from ..models.base import Recommender, check_k

    k = check_k(k, "k")
    if backend not in ("local", "ray"):
        raise ParameterError(f"backend must be 'local' or 'ray', got {backend!r}")
    steps: dict[str, Any] = {}
    t0 = time.perf_counter()
    raw = read_user_ids(users_file)
    t1 = time.perf_counter()
    model = Recommender.load(model_dir)
    known, idx = user_indices(model, raw, skip_unknown, str(users_file))
    t2, c2 = time.perf_counter(), time.process_time()
    if backend == "ray":
        from ..distributed import ray_recommend

        steps["ray"] = {}
        items, scores = ray_recommend(model_dir, idx, k, workers=workers, address=address, exclude_seen=exclude_seen,
                                      stats=steps["ray"] if timings is not None else None)
    else:
        items, scores = recommend_blocks(model, idx, k, exclude_seen)
    t3, c3 = time.perf_counter(), time.process_time()
    rows = write_rankings(out, known, items, scores, model.items_)
    t4 = time.perf_counter()
    if timings is not None:
        timings.update(steps, read=t1 - t0, load=t2 - t1, score=t3 - t2, write=t4 - t3, score_cpu=c3 - c2)
    return {"users": len(known), "rows": rows, "backend": backend}
