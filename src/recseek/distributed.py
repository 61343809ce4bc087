"""Ray as the engine for the two jobs that outgrow one machine: sweeps and batch scoring.

- **Hyperparameter sweeps** (``recseek run EXP.toml --backend ray``): each batch of
  trials that the tuner proposes (:mod:`recseek.evaluation.tuning`, Optuna ask-and-tell)
  runs as Ray tasks, one CPU each. A task receives only plain settings (the experiment
  file or table, the fold, the hyperparameters); it reads the data itself through
  recseek's readers and rebuilds the split, so no arrays travel between processes and the
  data a kernel sees is what the readers checked. The proposals depend only on the seed
  and the earlier batches, so the search equals the local one for the same ``batch``.
- **Batch scoring** (``recseek score MODEL --users FILE --out FILE --backend ray``): a Ray
  Data pipeline over the user indices with a pool of actors, each holding the model loaded
  (and verified) from its npz bundle; the lists equal the local path's (scores to float32
  rounding: BLAS on one thread per actor may differ from the driver's in the last bit).

Without an address Ray starts a private local instance on 127.0.0.1 with ``workers`` CPUs
(default: all) and stops it afterwards. To use a cluster, start it with ``ray start``
(``ray start --head`` on one node, ``ray start --address HEAD:6379`` on the others) and pass
``--ray-address HEAD:6379`` (or ``auto`` on a cluster node); the experiment's data and the
model folder must then be readable at the same path on every node (a shared file system).

Ray is an optional dependency: ``pip install 'recseek[ray]'``.
"""

from __future__ import annotations

import contextlib
import json
import os
from collections.abc import Iterator, Mapping
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np

from .errors import ParameterError

__all__ = ["RayTrialRunner", "ray_recommend", "ray_session"]


def _ray() -> Any:
    from ._optional import require

    return require("ray", purpose="the Ray backend")


@contextlib.contextmanager
def ray_session(workers: int | None = None, address: str | None = None) -> Iterator[Any]:
    """Connect to Ray (``address``) or start a local instance with ``workers`` CPUs; yields
    the ``ray`` module and shuts down only an instance it started."""
    ray = _ray()
    if workers is not None and (not isinstance(workers, int) or workers < 1):
        raise ParameterError(f"workers must be a positive integer, got {workers!r}")
    started = False
    if not ray.is_initialized():
        kw: dict[str, Any] = {"include_dashboard": False, "log_to_driver": False, "configure_logging": False}
        if address:
            ray.init(address=address, **kw)
        else:
            ray.init(num_cpus=workers or os.cpu_count() or 1, _node_ip_address="127.0.0.1", **kw)
        started = True
    try:
        yield ray
    finally:
        if started:
            ray.shutdown()


def _cpus(ray: Any, workers: int | None) -> int:
    return max(1, int(workers or ray.cluster_resources().get("CPU", 1)))


def _one_thread() -> None:
    """Each task or actor holds one CPU: run numba kernels on one thread there."""
    from ._numba import set_num_threads

    set_num_threads(1)


# ---------------------------------------------------------------- batch scoring
class _Scorer:
    """A Ray Data actor: loads the model once, then recommends for batches of user indices."""

    def __init__(self, model_dir: str, k: int, exclude_seen: bool) -> None:
        from .models.base import Recommender

        _one_thread()
        self.model = Recommender.load(model_dir)
        self.k = k
        self.exclude_seen = exclude_seen

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        from .evaluation.batch import recommend_blocks

        ids, scores = recommend_blocks(self.model, batch["user"].astype(np.int64), self.k, self.exclude_seen)
        return {"position": batch["position"], "ids": ids, "scores": scores}


def ray_recommend(model_dir: str | Path, users: np.ndarray, k: int, *, workers: int | None = None,
                  address: str | None = None, exclude_seen: bool = True,
                  batch_size: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """``(item indices, scores)`` of ``users`` (shape (n, k)) computed by a pool of Ray actors."""
    from .evaluation.batch import BLOCK_USERS

    users = np.asarray(users, dtype=np.int64)
    batch_size = int(batch_size or BLOCK_USERS)
    with ray_session(workers, address) as ray:
        pool = _cpus(ray, workers)
        import pandas as pd

        table = pd.DataFrame({"user": users, "position": np.arange(len(users), dtype=np.int64)})
        # the blocks are made here, as consecutive runs of batch_size users (the local path's
        # blocks, so every user is scored in the same company and the floats agree to the
        # bit); an all-to-all repartition inside Ray would need a CPU the actor pool holds
        ds = ray.data.from_pandas([table.iloc[j:j + batch_size] for j in range(0, len(users), batch_size)])
        out = ds.map_batches(_Scorer, fn_constructor_args=(str(Path(model_dir).resolve()), int(k), bool(exclude_seen)),
                             batch_size=batch_size, concurrency=pool, num_cpus=1, batch_format="numpy")
        ids = np.full((len(users), k), -1, dtype=np.int64)
        scores = np.full((len(users), k), np.nan, dtype=np.float32)
        for b in out.iter_batches(batch_size=None, batch_format="numpy"):
            ids[b["position"]] = b["ids"]
            scores[b["position"]] = b["scores"]
    return ids, scores


# ---------------------------------------------------------------- sweeps
@lru_cache(maxsize=4)
def _parts(recipe: str) -> tuple[Any, Any]:
    """The (fit part, validation part) a recipe names, read and split in this worker once."""
    from .evaluation.experiment import _folds, _load_data, load_experiment
    from .evaluation.tuning import validation_split

    r = json.loads(recipe)
    exp = load_experiment(r["config"])
    data = _load_data(exp, r["data_path"])
    train = data if r["fold"] is None else _folds(exp, data)[r["fold"]][0]
    return validation_split(train, exp.split, float(r["validation"]), int(r["seed"]))


def _trial(recipe: str, name: str, params: dict[str, Any], ev: dict[str, Any], metric: str) -> tuple[float, float]:
    from .evaluation.experiment import _evaluate
    from .evaluation.tuning import run_trial

    _one_thread()
    fit_part, val_part = _parts(recipe)
    return run_trial(name, params, fit_part, val_part, ev, metric, lambda m, tr, te, e: _evaluate(m, tr, te, e, False))


class RayTrialRunner:
    """Runs a batch of tuning trials as Ray tasks (the ``runner`` of :func:`recseek.evaluation.tuning.tune`).

    ``config`` is the experiment (a TOML path, or a table whose data path is absolute);
    ``fold`` the fold whose training part is tuned (None: all the data, for ``recseek train``).
    """

    def __init__(self, ray: Any, config: str | Mapping[str, Any], data_path: str | None, fold: int | None,
                 name: str, evaluation: Mapping[str, Any], tuning: Mapping[str, Any]) -> None:
        from .evaluation.tuning import trial_metrics

        self.ray = ray
        self.recipe = json.dumps({"config": config if isinstance(config, str) else dict(config),
                                  "data_path": data_path, "fold": fold, "validation": tuning["validation"],
                                  "seed": tuning["seed"]}, sort_keys=True, default=str)
        self.name = name
        self.metric = str(tuning["metric"])
        self.ev = trial_metrics(evaluation, self.metric)
        self.remote = ray.remote(num_cpus=1)(_trial)

    def __call__(self, settings: list[dict[str, Any]]) -> list[tuple[float, float]]:
        refs = [self.remote.remote(self.recipe, self.name, dict(p), self.ev, self.metric) for p in settings]
        return [tuple(x) for x in self.ray.get(refs)]
