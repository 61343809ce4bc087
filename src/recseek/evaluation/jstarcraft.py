"""P1: the JStarCraft RNS protocol on FilmTrust (and its other data sets), shared by
``benchmarks/bench_p1.py`` and the published-floor tests.

Protocol (PROTOCOLS.md, P1): per user, records sorted stably by ``instant``, the first
``floor(0.8 n)`` to train, the rest to test (data sets without a time column are split
per user at random, seed 0). Ranking: top-10 over every item outside the user's
training data, users without test items skipped. Rating: predictions clamped to the
training rating range.

Model settings come from TOML files (``benchmarks/p1/*.toml``): ``[[models]]`` tables
with a ``name``, hyperparameters and optionally ``dataset`` (default ``"filmtrust"``;
another JStarCraft data set is read from the folder of that name beside the FilmTrust
folder, e.g. ``product``). Published figures come from ``jstarcraft_ranking.csv`` and
``jstarcraft_rating.csv``.
"""

from __future__ import annotations

import csv
import time
import tomllib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..data import Interactions
from ..errors import DataError

__all__ = [
    "PUBLISHED_MODEL",
    "PUBLISHED_NAME",
    "RANKING_METRICS",
    "RATING_METRICS",
    "P1Case",
    "cases",
    "key_metric",
    "load_dataset_split",
    "load_split",
    "published_row",
    "published_tasks",
    "read_anchors",
    "read_model_specs",
    "run_model",
]

#: Ranking metrics of the P1 table (``map_capped`` is JStarCraft's MAP, over min(|test|, 10)).
RANKING_METRICS = ["auc", "map_capped", "mrr", "ndcg", "novelty", "precision", "recall"]
#: Our metric name -> the column of JStarCraft's table, where the two differ.
PUBLISHED_NAME = {"map_capped": "map"}
#: recseek model name -> the name of its row in JStarCraft's published tables, where they differ.
PUBLISHED_MODEL = {"AspectModelRanking": "AspectRanking", "AspectModelRating": "AspectRating"}
RATING_METRICS = ["mae", "mse", "rmse", "mpe"]

Anchors = dict[str, dict[str, dict[str, float]]]


def key_metric(task: str) -> str:
    """The metric a P1 row is judged by: NDCG@10 for ranking, MAE for rating."""
    return "ndcg" if task == "ranking" else "mae"


def read_anchors(folder: Path) -> Anchors:
    """``{"ranking"|"rating": {key: row}}`` from ``jstarcraft_ranking.csv`` / ``jstarcraft_rating.csv``.

    The key is the lower-case model name, with ``@dataset`` appended for data sets other
    than FilmTrust; a missing file gives an empty task.
    """
    out: Anchors = {"ranking": {}, "rating": {}}
    for task in out:
        path = Path(folder) / f"jstarcraft_{task}.csv"
        if not path.exists():
            continue
        with open(path, newline="") as f:
            for line, row in enumerate(csv.DictReader(f), start=2):
                name, dataset = row["model"].lower(), row["dataset"]
                key = name if dataset == "filmtrust" else f"{name}@{dataset}"
                try:
                    out[task][key] = {k: float(v) for k, v in row.items() if k not in ("model", "dataset")}
                except (TypeError, ValueError):
                    raise DataError(f"{path}, line {line}: a figure is not a number") from None
    return out


def read_model_specs(folder: Path) -> list[tuple[str, dict[str, Any]]]:
    """``[(file name, model table)]`` of every ``[[models]]`` in ``folder/*.toml``, in file order."""
    specs = []
    for path in sorted(Path(folder).glob("*.toml")):
        try:
            doc = tomllib.loads(path.read_text())
        except tomllib.TOMLDecodeError as e:
            raise DataError(f"{path}: invalid TOML: {e}") from None
        for m in doc.get("models", []):
            if "name" not in m:
                raise DataError(f"{path}: a [[models]] table has no 'name'")
            specs.append((path.name, dict(m)))
    return specs


def load_split(data_dir: Path, order: str = "time") -> tuple[Interactions, Interactions, Interactions]:
    """``(data, train, test)``: the per-user 80/20 split, by time (FilmTrust) or seeded at random."""
    from ..data.readers import read
    from ..data.split import split

    data = read(data_dir, format="jstarcraft")
    train, test = split(data, "ratio", ratio=0.8, by="user", order=order, seed=0)
    return data, train, test


def load_dataset_split(filmtrust_dir: Path, dataset: str = "filmtrust") -> tuple[Interactions, Interactions, Interactions]:
    """:func:`load_split` of FilmTrust, or of another JStarCraft data set read from the folder
    of that name beside the FilmTrust folder (no time column there: split at random, seed 0)."""
    if dataset == "filmtrust":
        return load_split(Path(filmtrust_dir))
    path = Path(filmtrust_dir).parent / dataset
    if not path.exists():
        raise DataError(f"{dataset} data not found at {path}")
    return load_split(path, order="random")


def _anchor_key(model: type, dataset: str) -> str:
    name = PUBLISHED_MODEL.get(model.name, model.name)
    return name.lower() + ("" if dataset == "filmtrust" else f"@{dataset}")


def published_tasks(model: type, anchors: Anchors, dataset: str = "filmtrust") -> list[str]:
    """The tasks where JStarCraft publishes a row for ``model`` on ``dataset`` (RandomGuess
    has both), else the model's own task."""
    key = _anchor_key(model, dataset)
    return [t for t in ("ranking", "rating") if key in anchors[t]] or [model.task]


def published_row(model: type, task: str, anchors: Anchors, dataset: str = "filmtrust") -> dict[str, float] | None:
    """JStarCraft's row for ``model`` on ``task`` and ``dataset``, if it publishes one."""
    return anchors[task].get(_anchor_key(model, dataset))


@dataclass
class P1Case:
    """One P1 row to run: a model with its settings on one data set and task."""

    model: str
    task: str
    params: dict[str, Any]
    dataset: str = "filmtrust"
    file: str = ""
    published: dict[str, float] | None = None

    @property
    def label(self) -> str:
        return self.model if self.dataset == "filmtrust" else f"{self.model} ({self.dataset})"


def cases(specs: list[tuple[str, dict[str, Any]]], anchors: Anchors) -> Iterator[P1Case]:
    """The P1 rows of ``specs``: each model on every task where JStarCraft publishes a row
    for it (RandomGuess on both), else on its own task. Unknown model names raise."""
    from ..models import registry

    for fname, spec in specs:
        spec = dict(spec)
        name = spec.pop("name")
        dataset = spec.pop("dataset", "filmtrust")
        cls = registry.get(name)
        for task in published_tasks(cls, anchors, dataset):
            yield P1Case(cls.name, task, spec, dataset, fname, published_row(cls, task, anchors, dataset))


def run_model(name: str, params: dict[str, Any], task: str, train: Interactions, test: Interactions) -> dict:
    """Fit ``name`` with ``params`` on ``train`` and measure it on ``test``.

    Returns ``{"metrics": {...}, "train_ms": ..., "predict_ms": ..., "model": fitted}``;
    ranking metric names drop their ``@10``.
    """
    from ..models import registry
    from .protocol import evaluate_ranking, evaluate_rating

    model = registry.create(name, **params)
    t0 = time.perf_counter()
    model.fit(train)
    t1 = time.perf_counter()
    if task == "ranking":
        metrics = evaluate_ranking(model, train, test, k=10, metrics=RANKING_METRICS)
        metrics = {k.split("@")[0]: v for k, v in metrics.items()}
    else:
        metrics = evaluate_rating(model, test, metrics=RATING_METRICS)
    t2 = time.perf_counter()
    return {"metrics": metrics, "train_ms": (t1 - t0) * 1000, "predict_ms": (t2 - t1) * 1000, "model": model}
