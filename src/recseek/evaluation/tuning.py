"""Hyperparameter search on a validation split carved from the training part.

A ``[[models]]`` table of an experiment may give search spaces instead of values::

    [[models]]
    name = "WRMF"
    factors = [32, 64, 128]                 # a list: one of these values
    reg = { log_uniform = [1e-3, 10.0] }    # a number drawn on a log scale
    alpha = { uniform = [1.0, 40.0] }       # a number drawn uniformly
    epochs = { int = [5, 30] }              # an integer (log_int: on a log scale)
    item_bias = { choice = [true, false] }  # explicit choice (for list-valued hyperparameters too)

    [tuning]
    trials = 20          # trial budget per model (and per fold)
    metric = "ndcg@10"   # what to optimise (default: the first [evaluation] metric)
    sampler = "tpe"      # tpe (Optuna's Tree-structured Parzen Estimator) | random
    seed = 0             # seeds the sampler and the validation split
    # validation = 0.2   # share of each user's training records held out for validation
    # batch = 1          # trials proposed at once (default 1; with --backend ray: the
    #                    # number of workers, whose trials then run in parallel)
    # ray_engine = "tune"  # with --backend ray: "tune" (Ray Tune trials, default) or
    #                      # "actors" (a pool of long-lived Ray actors)

Every fold is tuned on its own training part only: the part is split again (per user, by
the experiment's ``order`` when it has one, else at random) into a fitting part and a
validation part, each trial fits on the first and is scored on the second, and the best
settings are then fitted on the whole training part and evaluated once on the test part.
The test part is never seen during the search.

Trials are proposed ``batch`` at a time (Optuna's ask-and-tell, :class:`Proposer`): the
sampler sees the results of every earlier batch, never those of its own batch. Locally a
batch runs one trial after another; with ``--backend ray`` (:mod:`recseek.distributed`) its
trials run in parallel as Ray Tune trials (or, with ``ray_engine = "actors"``, on a pool of
Ray actors). Either way the proposals depend only on the seed and the earlier results, so
for a seed and a batch size the search (and, with deterministic training, every figure) is
the same on one core, on a Ray cluster or in between.

Optuna is an optional dependency (``pip install 'recseek[tune]'``).
"""

from __future__ import annotations

import math
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..errors import ParameterError

__all__ = ["Proposer", "Space", "TUNING_KEYS", "check_tuning", "find_spaces", "first_point", "tune"]

TUNING_KEYS = {"trials", "metric", "sampler", "seed", "validation", "batch", "ray_engine"}
#: How ``--backend ray`` runs the trials: Ray Tune (the default) or recseek's actor pool.
RAY_ENGINES = ("tune", "actors")
_KINDS = ("uniform", "log_uniform", "int", "log_int", "choice")
#: Metrics where lower is better.
_LOWER_IS_BETTER = {"mae", "mse", "rmse", "mpe"}


@dataclass(frozen=True)
class Space:
    """The search space of one hyperparameter: ``kind`` in uniform, log_uniform, int,
    log_int or choice; ``low``/``high`` bound the numeric kinds; ``choices`` lists the values."""

    kind: str
    low: float | int | None = None
    high: float | int | None = None
    choices: tuple[Any, ...] = ()

    def describe(self) -> str:
        if self.kind == "choice":
            return "one of " + ", ".join(repr(c) for c in self.choices)
        return f"{self.kind.replace('_', '-')} in [{self.low}, {self.high}]"


def _num(v: Any) -> bool:
    return isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v)


def _space(where: str, name: str, value: Any, default: Any) -> Space | None:
    """The space ``value`` describes, or None when it is a plain value."""
    list_valued = isinstance(default, list | tuple)
    if isinstance(value, list) and not list_valued:
        if not value:
            raise ParameterError(f"{where}: {name} = [] lists no value to choose from")
        return Space("choice", choices=tuple(value))
    if not isinstance(value, dict):
        return None
    if len(value) != 1 or next(iter(value)) not in _KINDS:
        raise ParameterError(f"{where}: {name} must be a value or one search space "
                             f"{{ {' | '.join(k + ' = ...' for k in _KINDS)} }}, got {value!r}")
    kind, arg = next(iter(value.items()))
    if kind == "choice":
        if not isinstance(arg, list) or not arg:
            raise ParameterError(f"{where}: {name} choice must be a non-empty list, got {arg!r}")
        return Space("choice", choices=tuple(tuple(a) if isinstance(a, list) else a for a in arg))
    if not (isinstance(arg, list) and len(arg) == 2 and all(_num(a) for a in arg) and arg[0] < arg[1]):
        raise ParameterError(f"{where}: {name} {kind} must be [low, high] with low < high, got {arg!r}")
    low, high = arg
    if kind.startswith("log") and low <= 0:
        raise ParameterError(f"{where}: {name} {kind} needs a positive low bound, got {low!r}")
    if kind in ("int", "log_int"):
        if not all(isinstance(a, int) for a in arg):
            raise ParameterError(f"{where}: {name} {kind} bounds must be integers, got {arg!r}")
        return Space(kind, int(low), int(high))
    return Space(kind, float(low), float(high))


def find_spaces(where: str, model: str, params: Mapping[str, Any]) -> tuple[dict[str, Any], dict[str, Space]]:
    """Split ``params`` into fixed values and search spaces (checked; raises ParameterError)."""
    from ..models import registry

    defaults = registry.get(model).param_defaults()
    fixed: dict[str, Any] = {}
    spaces: dict[str, Space] = {}
    for name, value in params.items():
        s = _space(where, name, value, defaults.get(name))
        if s is None:
            fixed[name] = value
        else:
            spaces[name] = s
    return fixed, spaces


def first_point(spaces: Mapping[str, Space]) -> dict[str, Any]:
    """One value of every space (the first choice, the low bound): to check and warm up."""
    return {n: (s.choices[0] if s.kind == "choice" else s.low) for n, s in spaces.items()}


def check_tuning(source: str, tuning: dict[str, Any], evaluation: Mapping[str, Any]) -> None:
    """Validate a ``[tuning]`` table in place (defaults filled in)."""
    for key in tuning:
        if key not in TUNING_KEYS:
            raise ParameterError(f"{source}: unknown key [tuning] {key} (valid: {', '.join(sorted(TUNING_KEYS))})")
    trials = tuning.setdefault("trials", 20)
    if not (isinstance(trials, int) and not isinstance(trials, bool) and 1 <= trials <= 100_000):
        raise ParameterError(f"{source}: [tuning] trials must be an integer from 1 to 100000, got {trials!r}")
    sampler = tuning.setdefault("sampler", "tpe")
    if sampler not in ("tpe", "random"):
        raise ParameterError(f"{source}: [tuning] sampler must be 'tpe' or 'random', got {sampler!r}")
    seed = tuning.setdefault("seed", 0)
    if not (isinstance(seed, int) and not isinstance(seed, bool) and seed >= 0):
        raise ParameterError(f"{source}: [tuning] seed must be a non-negative integer, got {seed!r}")
    batch = tuning.get("batch", 1)  # unset: 1 locally, the number of workers with the Ray backend
    if not (isinstance(batch, int) and not isinstance(batch, bool) and 1 <= batch <= 1024):
        raise ParameterError(f"{source}: [tuning] batch must be an integer from 1 to 1024, got {batch!r}")
    engine = tuning.get("ray_engine", "tune")  # only read with --backend ray
    if engine not in RAY_ENGINES:
        raise ParameterError(f"{source}: [tuning] ray_engine must be 'tune' or 'actors', got {engine!r}")
    val = tuning.setdefault("validation", 0.2)
    if not (_num(val) and 0 < val < 1):
        raise ParameterError(f"{source}: [tuning] validation must be a number between 0 and 1, got {val!r}")
    from ..metrics import RANKING_METRICS, RATING_METRICS

    task = evaluation.get("task", "ranking")
    metric = tuning.get("metric")
    if metric is None:
        listed = evaluation.get("metrics")
        metric = listed[0] if listed else ("ndcg" if task == "ranking" else "rmse")
    if not isinstance(metric, str):
        raise ParameterError(f"{source}: [tuning] metric must be a metric name, got {metric!r}")
    base = metric.strip().lower().split("@", 1)[0]
    valid = RANKING_METRICS if task == "ranking" else RATING_METRICS
    if base not in valid:
        raise ParameterError(f"{source}: [tuning] unknown {task} metric {metric!r} (valid: {', '.join(valid)})")
    if task == "ranking" and "@" not in metric and base not in ("auc", "auc_full", "coverage", "gini"):
        metric = f"{base}@{evaluation.get('k', 10)}"
    tuning["metric"] = metric.strip().lower()


def validation_split(train: Any, split: Mapping[str, Any], ratio: float, seed: int) -> tuple[Any, Any]:
    """``(fit part, validation part)`` of a training part: per user, ``ratio`` of its records
    go to validation, the latest when the experiment orders by time, else drawn at random."""
    from ..data.split import split as do_split

    order = split.get("order", "time" if split.get("method") in ("temporal",) else "random")
    if order == "time" and train.timestamps is None:
        order = "random"
    return do_split(train, "ratio", ratio=1.0 - ratio, by="user", order=order, seed=seed)


def metric_value(metrics: Mapping[str, float], metric: str) -> float:
    if metric in metrics:
        return float(metrics[metric])
    for key, value in metrics.items():
        if key.split("@", 1)[0] == metric:
            return float(value)
    raise ParameterError(f"[tuning] metric {metric!r} is not among the computed metrics ({', '.join(metrics)})")


def suggest(trial: Any, spaces: Mapping[str, Space]) -> dict[str, Any]:
    """Values of ``spaces`` proposed by an Optuna trial."""
    out: dict[str, Any] = {}
    for pname, s in spaces.items():
        if s.kind == "choice":
            # Optuna stores choices by position so that any value (lists included) can be chosen
            idx = trial.suggest_categorical(pname, list(range(len(s.choices))))
            v = s.choices[idx]
            out[pname] = list(v) if isinstance(v, tuple) else v
        elif s.kind in ("int", "log_int"):
            out[pname] = trial.suggest_int(pname, int(s.low), int(s.high), log=s.kind == "log_int")
        else:
            out[pname] = trial.suggest_float(pname, float(s.low), float(s.high), log=s.kind == "log_uniform")
    return out


def trial_metrics(evaluation: Mapping[str, Any], metric: str) -> dict[str, Any]:
    """The evaluation settings of a trial: only the tuned metric is computed."""
    ev = {k: v for k, v in evaluation.items() if k != "metrics"}
    ev["metrics"] = [metric.split("@", 1)[0]] if evaluation.get("task", "ranking") == "ranking" else [metric]
    return ev


def run_trial(name: str, params: Mapping[str, Any], fit_part: Any, val_part: Any, ev: Mapping[str, Any],
              metric: str, evaluate) -> tuple[float, float]:
    """``(validation value, seconds)`` of one setting; NaN when it cannot train (e.g. it diverges)."""
    from ..errors import RecseekError
    from ..models import registry

    t0 = time.perf_counter()
    try:
        model = registry.create(name, **params)
        model.fit(fit_part)
        value = metric_value(evaluate(model, fit_part, val_part, ev), metric)
    except RecseekError:
        value = math.nan
    return value, time.perf_counter() - t0


class Proposer:
    """The settings of a search, ``batch`` at a time, from an Optuna study (ask-and-tell).

    ``next_batch()`` asks the study for the next batch of trials and returns their settings
    (``fixed`` merged with the proposed values), an empty list once ``tuning["trials"]``
    have been proposed; ``tell(outcomes)`` gives back one ``(value, seconds)`` (or
    ``(value, seconds, error message)``) per setting of that batch, in its order, before
    the next batch can be asked for. A NaN value marks a failed trial (Optuna records it
    as failed). Every engine (the local loop, Ray Tune's searcher, the actor pool) drives
    the same object, so for a seed and a batch size the trials are the same everywhere.
    """

    def __init__(self, fixed: Mapping[str, Any], spaces: Mapping[str, Space], tuning: Mapping[str, Any],
                 direction: str) -> None:
        from .._optional import require

        optuna = require("optuna", purpose="hyperparameter tuning")
        optuna.logging.set_verbosity(optuna.logging.WARNING)
        self._optuna = optuna
        seed = int(tuning["seed"])
        if tuning["sampler"] == "tpe":
            sampler = optuna.samplers.TPESampler(seed=seed)
        else:
            sampler = optuna.samplers.RandomSampler(seed=seed)
        self.study = optuna.create_study(direction=direction, sampler=sampler)
        self.fixed = dict(fixed)
        self.spaces = dict(spaces)
        self.budget = int(tuning["trials"])
        self.batch = int(tuning.get("batch", 1))
        #: every trial told so far: ``{"number", "params", "value", "seconds"}`` (and
        #: ``"error"`` when the trial raised rather than returned a value)
        self.trials: list[dict[str, Any]] = []
        self._out: list[tuple[Any, dict[str, Any]]] = []

    @property
    def pending(self) -> int:
        """Trials of the current batch not told yet."""
        return len(self._out)

    def next_batch(self) -> list[dict[str, Any]]:
        """The settings of the next batch (empty when the budget is spent)."""
        if self._out:
            raise RuntimeError("the previous batch of trials has not been told yet")
        n = min(self.batch, self.budget - len(self.trials))
        asked = [self.study.ask() for _ in range(max(n, 0))]
        self._out = [(t, suggest(t, self.spaces)) for t in asked]
        return [{**self.fixed, **p} for _, p in self._out]

    def numbers(self) -> list[int]:
        """Optuna's trial numbers of the current batch."""
        return [t.number for t, _ in self._out]

    def tell(self, outcomes: list[tuple[Any, ...]]) -> None:
        """The outcome of every trial of the current batch, in its order."""
        if len(outcomes) != len(self._out):
            raise RuntimeError(f"{len(outcomes)} outcomes for a batch of {len(self._out)} trials")
        for (t, p), outcome in zip(self._out, outcomes, strict=True):
            value, seconds = float(outcome[0]), float(outcome[1])
            record = {"number": t.number, "params": p, "value": value, "seconds": seconds}
            if len(outcome) > 2 and outcome[2]:
                record["error"] = str(outcome[2])
            self.trials.append(record)
            if math.isfinite(value):
                self.study.tell(t, value)
            else:
                self.study.tell(t, state=self._optuna.trial.TrialState.FAIL)
        self._out = []


def tune(name: str, fixed: Mapping[str, Any], spaces: Mapping[str, Space], train: Any, split: Mapping[str, Any],
         evaluation: Mapping[str, Any], tuning: Mapping[str, Any], evaluate, runner=None) -> dict[str, Any]:
    """Search ``spaces`` for model ``name`` on a validation split of ``train``.

    ``evaluate(model, fit_part, validation_part, evaluation)`` returns the metrics dict.
    ``runner`` runs the trials: either a callable ``runner(list of settings) -> list of
    (value, seconds)`` that runs one batch (default: one trial after another here), or an
    object with a ``search(proposer)`` method that runs the whole search, taking batches
    from the :class:`Proposer` and telling it their outcomes (:mod:`recseek.distributed`
    runs them on Ray). Returns ``{"metric", "direction", "best_params", "best_value",
    "trials", "batch", "seconds", "validation"}`` where ``seconds`` is the wall time of the
    search and every trial is ``{"number", "params", "value", "seconds"}`` (value NaN when
    the settings failed to train; ``"error"`` added when a Ray trial raised).
    """
    metric = str(tuning["metric"])
    direction = "minimize" if metric.split("@", 1)[0] in _LOWER_IS_BETTER else "maximize"
    seed = int(tuning["seed"])
    proposer = Proposer(fixed, spaces, tuning, direction)
    fit_part, val_part = validation_split(train, split, float(tuning["validation"]), seed)
    ev = trial_metrics(evaluation, metric)
    if runner is None:
        def runner(settings: list[dict[str, Any]]) -> list[tuple[float, float]]:
            return [run_trial(name, p, fit_part, val_part, ev, metric, evaluate) for p in settings]
    started = time.perf_counter()
    search = getattr(runner, "search", None)
    if search is not None:
        search(proposer)
    else:
        while settings := proposer.next_batch():
            proposer.tell(runner(settings))
    trials = proposer.trials
    if len(trials) != proposer.budget:
        raise RuntimeError(f"[tuning] {name}: the search ran {len(trials)} of {proposer.budget} trials")
    done = [t for t in trials if math.isfinite(t["value"])]
    if not done:
        errors = [t["error"] for t in trials if t.get("error")]
        why = f" (first error: {errors[0]})" if errors else ""
        raise ParameterError(f"[tuning] {name}: none of the {len(trials)} trials trained successfully{why}")
    pick = min if direction == "minimize" else max
    best = pick(done, key=lambda t: t["value"])
    return {"metric": metric, "direction": direction, "best_params": dict(best["params"]),
            "best_value": float(best["value"]), "trials": trials, "batch": proposer.batch,
            "seconds": time.perf_counter() - started,
            "validation": {"fit_records": int(fit_part.nnz), "validation_records": int(val_part.nnz)}}


def best_so_far(trials: list[Mapping[str, Any]], direction: str) -> np.ndarray:
    """The best validation value after each trial (NaN before the first successful one)."""
    out = np.full(len(trials), np.nan)
    best = math.nan
    for j, t in enumerate(trials):
        v = float(t["value"])
        if math.isfinite(v) and (not math.isfinite(best) or (v < best if direction == "minimize" else v > best)):
            best = v
        out[j] = best
    return out
