"""Ray as the engine for the two jobs that outgrow one machine: sweeps and batch scoring.

- **Hyperparameter sweeps** (``recseek run EXP.toml --backend ray``): the trials are Ray
  Tune trials (``ray.tune.Tuner`` over a function trainable, :func:`tune_search`). A
  recseek searcher hands Tune the batches of the same Optuna ask-and-tell search as the
  local loop (:class:`recseek.evaluation.tuning.Proposer`): it suggests the settings of
  the current batch, then nothing until the whole batch is back, tells Optuna, and starts
  the next one; so the search equals the local one for the same ``batch``. At most
  ``batch`` trials run at once, each on one CPU and one thread, and Tune reuses the trial
  processes (``reuse_actors``). A trial receives only plain settings (the experiment file
  or table, the fold, the hyperparameters); its process reads the data once through
  recseek's readers, rebuilds the split and keeps it for every later trial, so no arrays
  travel between processes and the data a kernel sees is what the readers checked. A
  trial that raises is an errored Tune trial and counts as NaN. Tune's storage is a
  temporary folder removed afterwards, its progress output is off, and its per-trial
  result files are not written. ``[tuning] ray_engine = "actors"`` runs the same batches
  on a pool of long-lived Ray actors instead (:class:`RayTrialRunner`).

  Two Tune defaults would serialise the trials of a batch, and are changed for the run:
  with a searcher Tune starts one trial process at a time (``TUNE_MAX_PENDING_TRIALS_PG``,
  set to the batch size), and between batches it keeps only one finished trial process
  when no trial is waiting; the searcher therefore counts a trial's outcome when it is
  reported, so the next batch is already waiting when the processes are handed back.
- **Batch scoring** (``recseek score MODEL --users FILE --out FILE --backend ray``): a Ray
  Data pipeline over the user indices with a pool of actors, each holding the model loaded
  (and verified) from its npz bundle; the lists equal the local path's (scores to float32
  rounding: BLAS on one thread per actor may differ from the driver's in the last bit).

Every task and actor holds one CPU and runs on one thread: Ray sets ``OMP_NUM_THREADS=1``
in a one-CPU worker (which OpenBLAS and MKL follow) and the actor limits numba to one
thread. A ``runtime_env`` with the same variables would be explicit, but Ray then starts
fresh workers instead of its pre-started ones (the first two tasks took 8.9 s instead of
1.0 s on a loaded two-core machine), so it is not used.

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

__all__ = ["RayTrialRunner", "ray_recommend", "ray_session", "tune_search"]


def _ray() -> Any:
    from ._optional import require

    return require("ray", purpose="the Ray backend")


@contextlib.contextmanager
def ray_session(workers: int | None = None, address: str | None = None) -> Iterator[Any]:
    """Connect to Ray (``address``) or start a local instance with ``workers`` CPUs; yields
    the ``ray`` module and shuts down only an instance it started.

    A local instance is started lean (no dashboard, no log forwarding to the driver), but
    ``ray.init`` still starts the GCS, the raylet and five Python daemons (API server,
    autoscaler monitor, log monitor, dashboard and runtime-env agents) and pre-starts one
    worker per CPU: about 7 CPU seconds on a two-core machine, and a Ray Data pipeline
    adds three internal actors (statistics, autoscaling coordinator, actor locations) of
    about 7 more (``benchmarks/bench_ray.py`` prints them). Ray's public API has no switch
    for the monitors; a job that runs for seconds on one machine pays this once per command.
    """
    ray = _ray()
    if workers is not None and (not isinstance(workers, int) or workers < 1):
        raise ParameterError(f"workers must be a positive integer, got {workers!r}")
    started = False
    if not ray.is_initialized():
        import warnings

        kw: dict[str, Any] = {"include_dashboard": False, "log_to_driver": False, "configure_logging": False}
        with warnings.catch_warnings():
            # a notice about how later versions of Ray will set GPU variables (no GPU is asked for)
            warnings.filterwarnings("ignore", message=".*accelerator visible devices.*", category=FutureWarning)
            if address:
                ray.init(address=address, **kw)
            else:
                ray.init(num_cpus=workers or os.cpu_count() or 1, _node_ip_address="127.0.0.1", **kw)
        started = True
    try:
        yield ray
    finally:
        if started:
            _POOLS.clear()
            ray.shutdown()


def _cpus(ray: Any, workers: int | None) -> int:
    return max(1, int(workers or ray.cluster_resources().get("CPU", 1)))


def _one_thread() -> None:
    """Each task or actor holds one CPU: run numba kernels on one thread there (BLAS follows
    the ``OMP_NUM_THREADS=1`` that Ray sets in a one-CPU worker)."""
    from ._numba import set_num_threads

    set_num_threads(1)


def _clock() -> tuple[float, float]:
    """(wall clock shared by the processes of a machine, this process's CPU seconds)."""
    import time

    return time.time(), time.process_time()


# ---------------------------------------------------------------- batch scoring
class _Scorer:
    """A Ray Data actor: loads the model once, then recommends for batches of user indices.

    The constructor also runs the scoring kernels once on one user, so that the numba
    cache is loaded before the first batch (start-up, not steady-state scoring). With
    ``timed`` every output batch carries, per row, the batch's start and end (wall clock),
    the actor's CPU seconds for it, the actor's process id, its start-up seconds and the
    numba threads the batch ran on.
    """

    def __init__(self, model_dir: str, k: int, exclude_seen: bool, timed: bool = False) -> None:
        t0, c0 = _clock()
        from .models.base import Recommender

        _one_thread()
        self.model = Recommender.load(model_dir)
        self.k = k
        self.exclude_seen = exclude_seen
        if self.model.n_users_:
            self.model.recommend(np.zeros(1, dtype=np.int64), k, exclude_seen=exclude_seen)
        self.timed = timed
        t1, c1 = _clock()
        self.startup = (t1 - t0, c1 - c0)

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        from ._numba import get_num_threads
        from .evaluation.batch import recommend_blocks

        # numba's thread count is per thread, and Ray Data calls this from another thread
        # than the constructor's: without this the kernels ran on every core of the node
        _one_thread()
        t0, c0 = _clock()
        ids, scores = recommend_blocks(self.model, batch["user"].astype(np.int64), self.k, self.exclude_seen)
        out = {"position": batch["position"], "ids": ids, "scores": scores}
        if self.timed:
            t1, c1 = _clock()
            n = len(ids)
            for key, value in (("t_start", t0), ("t_end", t1), ("cpu", c1 - c0), ("pid", float(os.getpid())),
                               ("startup_wall", self.startup[0]), ("startup_cpu", self.startup[1]),
                               ("threads", float(get_num_threads()))):
                out[key] = np.full(n, value, dtype=np.float64)
        return out


def _scoring_stats(rows: list[dict[str, float]], submitted: float, finished: float, driver_cpu: float,
                   users: int) -> dict[str, Any]:
    """Start-up and steady-state figures of one scoring pipeline from its batches' timings."""
    actors: dict[int, dict[str, float]] = {}
    for r in rows:
        a = actors.setdefault(int(r["pid"]), {"pid": int(r["pid"]), "numba_threads": int(r["threads"]), "batches": 0, "busy_s": 0.0, "cpu_s": 0.0, "first": r["t_start"],
                                              "last": r["t_end"], "startup_s": r["startup_wall"],
                                              "startup_cpu_s": r["startup_cpu"]})
        a["batches"] += 1
        a["busy_s"] += r["t_end"] - r["t_start"]
        a["cpu_s"] += r["cpu"]
        a["first"] = min(a["first"], r["t_start"])
        a["last"] = max(a["last"], r["t_end"])
    first = min(a["first"] for a in actors.values())
    last = max(a["last"] for a in actors.values())
    return {
        "actors": len(actors),
        "users": users,
        # from submitting the pipeline to the first batch: actors starting (imports, model
        # load and verification, kernel cache) and Ray Data planning
        "startup_s": first - submitted,
        # from the first batch starting to the last one ending: scoring with warm actors
        "steady_s": last - first,
        "collect_s": finished - last,
        "users_per_s": users / max(last - first, 1e-9),
        "driver_cpu_s": driver_cpu,
        "per_actor": [{k: v for k, v in a.items() if k not in ("first", "last")} for a in actors.values()],
    }


def ray_recommend(model_dir: str | Path, users: np.ndarray, k: int, *, workers: int | None = None,
                  address: str | None = None, exclude_seen: bool = True,
                  batch_size: int | None = None, stats: dict[str, Any] | None = None) -> tuple[np.ndarray, np.ndarray]:
    """``(item indices, scores)`` of ``users`` (shape (n, k)) computed by a pool of Ray actors.

    ``stats``, when given, is filled with where the time went: ``session_s`` (starting or
    joining Ray), ``startup_s`` (until the first batch starts: actor start-up), ``steady_s``
    (first batch start to last batch end), ``collect_s``, per-actor busy and CPU seconds,
    and the driver's CPU seconds during the pipeline.
    """
    from .evaluation.batch import BLOCK_USERS

    users = np.asarray(users, dtype=np.int64)
    batch_size = int(batch_size or BLOCK_USERS)
    timed = stats is not None
    t_session, _ = _clock()
    with ray_session(workers, address) as ray:
        submitted, c_submitted = _clock()
        pool = _cpus(ray, workers)
        import pandas as pd

        table = pd.DataFrame({"user": users, "position": np.arange(len(users), dtype=np.int64)})
        # the blocks are made here, as consecutive runs of batch_size users (the local path's
        # blocks, so every user is scored in the same company and the floats agree to the
        # bit); an all-to-all repartition inside Ray would need a CPU the actor pool holds
        blocks = [table.iloc[j:j + batch_size] for j in range(0, len(users), batch_size)]
        ds = ray.data.from_pandas(blocks)
        out = ds.map_batches(_Scorer, fn_constructor_args=(str(Path(model_dir).resolve()), int(k), bool(exclude_seen),
                                                           timed),
                             # no more actors than blocks (Ray Data warns about idle ones)
                             batch_size=batch_size, concurrency=max(1, min(pool, len(blocks))), num_cpus=1,
                             batch_format="numpy")
        ids = np.full((len(users), k), -1, dtype=np.int64)
        scores = np.full((len(users), k), np.nan, dtype=np.float32)
        rows: list[dict[str, float]] = []
        for b in out.iter_batches(batch_size=None, batch_format="numpy"):
            ids[b["position"]] = b["ids"]
            scores[b["position"]] = b["scores"]
            if timed:
                keys = ("t_start", "t_end", "cpu", "pid", "startup_wall", "startup_cpu", "threads")
                # a batch handed over may join several actor batches: one row per distinct batch
                seen = np.unique(np.column_stack([b[key] for key in keys]), axis=0)
                rows.extend(dict(zip(keys, s.tolist(), strict=True)) for s in seen)
        finished, c_finished = _clock()
    if timed and rows:
        stats.update(_scoring_stats(rows, submitted, finished, c_finished - c_submitted, len(users)))
        stats["session_s"] = submitted - t_session
        stats["workers"] = pool
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


class _TrialActor:
    """A long-lived sweep worker on one thread: reads and splits the data of a recipe once
    (kept for every later trial of it), then fits and scores one setting per call."""

    def __init__(self) -> None:
        _one_thread()

    def load(self, recipe: str) -> tuple[float, float]:
        """Read and split the recipe's data (once); returns the (wall, CPU) seconds it took."""
        t0, c0 = _clock()
        _parts(recipe)
        t1, c1 = _clock()
        return t1 - t0, c1 - c0

    def run(self, recipe: str, name: str, params: dict[str, Any], ev: dict[str, Any],
            metric: str) -> tuple[float, float]:
        from .evaluation.experiment import _evaluate
        from .evaluation.tuning import run_trial

        _one_thread()  # per thread in numba: set where the trial runs
        fit_part, val_part = _parts(recipe)
        return run_trial(name, params, fit_part, val_part, ev, metric,
                         lambda m, tr, te, e: _evaluate(m, tr, te, e, False))


#: The sweep actors of each running Ray job (one pool per job, grown up to the cluster's
#: CPUs, so that the pools of later models or folds never wait for CPUs that earlier ones
#: hold); emptied when a session that recseek started ends.
_POOLS: dict[str, list[Any]] = {}


def _trial_pool(ray: Any, size: int) -> list[Any]:
    pool = _POOLS.setdefault(ray.get_runtime_context().get_job_id(), [])
    size = max(1, min(size, _cpus(ray, None)))
    if len(pool) < size:
        cls = ray.remote(num_cpus=1)(_TrialActor)
        pool.extend(cls.remote() for _ in range(size - len(pool)))
    return pool[:size]


def _tune_trial(config: dict[str, Any], recipe: str, name: str, ev: dict[str, Any], metric: str) -> None:
    """The Ray Tune trainable of a sweep: one setting, fitted and scored in a trial process
    on one thread; the data come from the process's ``_parts`` cache (read once per
    process, and Tune reuses the processes). A :class:`~recseek.errors.RecseekError`
    (settings that cannot train) reports NaN; any other exception goes to Tune as an
    errored trial, which the searcher turns into NaN."""
    from ray import tune

    from .evaluation.experiment import _evaluate
    from .evaluation.tuning import run_trial

    _one_thread()  # Tune runs a function trainable in a thread of its own: set it there
    fit_part, val_part = _parts(recipe)
    value, seconds = run_trial(name, json.loads(config["settings"]), fit_part, val_part, ev, metric,
                               lambda m, tr, te, e: _evaluate(m, tr, te, e, False))
    tune.report({"value": float(value), "seconds": float(seconds), "pid": os.getpid()})


def _trial_dirname(trial: Any) -> str:
    return str(trial.trial_id)


def _batch_searcher(proposer: Any) -> Any:
    """A Ray Tune searcher that hands out the proposer's batches (see :class:`_BatchSearcher`)."""
    from ray.tune.search import Searcher

    class _BatchSearcher(Searcher):
        """Ray Tune's view of a :class:`recseek.evaluation.tuning.Proposer`.

        ``suggest`` returns the settings of the current batch one by one, then None while
        any trial of that batch is still running; once all of them are back it tells the
        proposer and starts the next batch, and it returns ``Searcher.FINISHED`` when the
        budget is spent. A trial's config is ``{"number": Optuna's trial number,
        "settings": the settings as JSON}``; an errored trial counts as NaN, with its
        seconds measured here (from its suggestion to its end).
        """

        def __init__(self) -> None:
            super().__init__(metric="value", mode="min" if proposer.study.direction.name == "MINIMIZE" else "max")
            self.proposer = proposer
            self.batch_no = 0
            self.queue: list[tuple[int, int, dict[str, Any]]] = []
            self.slots: dict[str, tuple[int, int, float]] = {}  # trial id -> (batch, slot, start)
            self.outcomes: list[tuple[float, float, str] | None] = []
            self.pids: set[int] = set()

        def _told(self) -> bool:
            """Tell the proposer the current batch if it is all back; True when nothing is out."""
            if self.queue or any(o is None for o in self.outcomes):
                return False
            if self.outcomes:
                self.proposer.tell(self.outcomes)
                self.outcomes = []
            return True

        def suggest(self, trial_id: str) -> dict[str, Any] | str | None:
            import time

            if not self.queue:
                if not self._told():
                    return None
                settings = self.proposer.next_batch()
                if not settings:
                    return Searcher.FINISHED
                self.batch_no += 1
                self.queue = list(zip(range(len(settings)), self.proposer.numbers(), settings, strict=True))
                self.outcomes = [None] * len(settings)
            slot, number, setting = self.queue.pop(0)
            self.slots[trial_id] = (self.batch_no, slot, time.perf_counter())
            return {"number": number, "settings": json.dumps(setting, sort_keys=True)}

        def _record(self, trial_id: str, outcome: tuple[float, float, str]) -> None:
            batch, slot, _ = self.slots[trial_id]
            if batch == self.batch_no and slot < len(self.outcomes) and self.outcomes[slot] is None:
                self.outcomes[slot] = outcome

        def on_trial_result(self, trial_id: str, result: dict[str, Any]) -> None:
            # the outcome counts as soon as the trial reports it, before its process is
            # handed back: the next batch is then staged while the trials of this one are
            # still ending, and Tune keeps their processes for it (it keeps at most one
            # finished trial process when no trial is waiting)
            if "value" in result:
                self._record(trial_id, (float(result["value"]), float(result["seconds"]), ""))
                self.pids.add(int(result.get("pid", -1)))

        def on_trial_complete(self, trial_id: str, result: dict[str, Any] | None = None,
                              error: bool = False) -> None:
            import time

            if trial_id not in self.slots:
                return
            if error or not result or "value" not in result:
                self._record(trial_id, (float("nan"), time.perf_counter() - self.slots[trial_id][2],
                                        "the trial raised an exception"))
            else:
                self._record(trial_id, (float(result["value"]), float(result["seconds"]), ""))
            del self.slots[trial_id]

        def finish(self, messages: Mapping[int, str]) -> None:
            """After ``Tuner.fit``: the error messages of the errored trials (by number) go
            into the last batch's outcomes, and that batch is told; a trial Tune never
            completed counts as failed."""
            self.queue = []
            for slot, out in enumerate(self.outcomes):
                if out is None:
                    self.outcomes[slot] = (float("nan"), float("nan"), "Ray Tune ended before the trial")
            self._told()
            for t in self.proposer.trials:
                if t.get("error") and t["number"] in messages:
                    t["error"] = messages[t["number"]]

        def save(self, checkpoint_path: str) -> None:  # the search is not resumable: nothing to save
            return None

        def restore(self, checkpoint_path: str) -> None:
            return None

    return _BatchSearcher()


@contextlib.contextmanager
def _quiet_tune(concurrency: int) -> Iterator[str]:
    """Settings of one Ray Tune run, undone afterwards: a temporary storage folder (yielded,
    then removed), no per-trial result files, both trials of a batch started together,
    and Tune's own logging (warnings about the files it does not write, errored trials'
    tracebacks: recseek reports those) held back."""
    import logging
    import shutil
    import tempfile

    env = {
        # Tune's CSV, JSON and TensorBoard loggers write every result to the storage folder
        "TUNE_DISABLE_AUTO_CALLBACK_LOGGERS": "1",
        # with a searcher Tune stages one trial at a time (waiting for its actor before it
        # asks for the next): the trials of a batch would start one after another
        "TUNE_MAX_PENDING_TRIALS_PG": str(max(1, concurrency)),
        # the experiment state (a resumable snapshot) is written every few seconds
        "TUNE_GLOBAL_CHECKPOINT_S": "100000",
        # Tune's newer output engine prints a configuration box and "View detailed results
        # here" even when told to be silent; the older one prints nothing at verbose=0
        "RAY_AIR_NEW_OUTPUT": "0",
    }
    saved_env = {k: os.environ.get(k) for k in env}
    loggers = [logging.getLogger(n) for n in ("ray.tune", "ray.train", "ray.air")]
    levels = [lg.level for lg in loggers]
    folder = tempfile.mkdtemp(prefix="recseek-tune-")
    os.environ.update(env)
    for lg in loggers:
        lg.setLevel(logging.CRITICAL)
    try:
        yield folder
    finally:
        for lg, level in zip(loggers, levels, strict=True):
            lg.setLevel(level)
        for k, v in saved_env.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
        shutil.rmtree(folder, ignore_errors=True)


@contextlib.contextmanager
def _staging_removed() -> Iterator[str]:
    """A unique experiment name (yielded) whose folders Tune makes in this node's Ray session
    folder (``artifacts/<time>/<name>``: the driver's copy of the experiment state, the trials'
    working folders) are removed afterwards. Ray keeps its session folders; a cluster's other
    nodes keep their trials' (empty) working folders in theirs."""
    import shutil
    import uuid

    name = f"recseek-sweep-{uuid.uuid4().hex[:12]}"
    try:
        yield name
    finally:
        try:
            from ray.train.constants import _get_ray_train_session_dir

            root = Path(_get_ray_train_session_dir())
        except Exception:  # a Ray without that helper: nothing known to remove
            root = None
        if root is not None and root.is_dir():
            for d in root.glob(f"*/{name}"):
                shutil.rmtree(d, ignore_errors=True)
                with contextlib.suppress(OSError):
                    d.parent.rmdir()  # the run's time-stamped folder, when nothing else is in it


def _error_message(error: BaseException) -> str:
    """The last line of an errored trial's exception (Ray wraps it with the traceback)."""
    cause = getattr(error, "cause", None)
    if isinstance(cause, BaseException):
        error = cause
    lines = [ln for ln in str(error).strip().splitlines() if ln.strip()]
    text = lines[-1].strip() if lines else ""
    kind = type(error).__name__
    return text if text.startswith(kind) or ": " in text else f"{kind}: {text}"


def tune_search(ray: Any, proposer: Any, trainable: Any, concurrency: int) -> list[int]:
    """Run every batch of ``proposer`` as Ray Tune trials of ``trainable`` (a function of a
    config ``{"number", "settings"}`` that reports ``{"value", "seconds"}``, and ``"pid"``
    optionally), at most ``concurrency`` at a time, each holding one CPU; the outcomes are
    told to ``proposer``. Returns the process ids the trials reported (Tune reuses them).
    """
    from ray import tune

    searcher = _batch_searcher(proposer)
    concurrency = max(1, min(int(concurrency), _cpus(ray, None)))
    with _quiet_tune(concurrency) as folder, _staging_removed() as name:
        tuner = tune.Tuner(
            tune.with_resources(trainable, {"cpu": 1}),
            tune_config=tune.TuneConfig(search_alg=searcher, num_samples=-1, max_concurrent_trials=concurrency,
                                        reuse_actors=True, trial_dirname_creator=_trial_dirname,
                                        trial_name_creator=_trial_dirname),
            run_config=tune.RunConfig(name=name, storage_path=folder, verbose=0, log_to_file=False,
                                      checkpoint_config=tune.CheckpointConfig(checkpoint_at_end=False),
                                      failure_config=tune.FailureConfig(max_failures=0, fail_fast=False)))
        grid = tuner.fit()
        messages = {}
        for j in range(len(grid)):
            r = grid[j]
            if r.error is not None and r.config and "number" in r.config:
                messages[int(r.config["number"])] = _error_message(r.error)
    searcher.finish(messages)
    if len(proposer.trials) < proposer.budget:  # Tune stopped early (e.g. interrupted with Ctrl-C)
        from .errors import RecseekError

        raise RecseekError(f"the Ray Tune sweep stopped after {len(proposer.trials)} of {proposer.budget} trials")
    return sorted(searcher.pids - {-1})


class RayTrialRunner:
    """Runs the trials of a search on Ray (the ``runner`` of
    :func:`recseek.evaluation.tuning.tune`).

    ``config`` is the experiment (a TOML path, or a table whose data path is absolute);
    ``fold`` the fold whose training part is tuned (None: all the data, for ``recseek train``).
    Up to ``tuning["batch"]`` trials run at once (at most the cluster's CPUs), each on one
    CPU and one thread, in processes that read the data once and keep it.

    ``tuning["ray_engine"]`` picks how: ``"tune"`` (default) runs every trial as a Ray Tune
    trial (:func:`tune_search`); ``"actors"`` runs trial ``j`` of a batch on actor ``j mod
    size`` of a pool of long-lived actors that the models and folds of one Ray job share.
    """

    def __init__(self, ray: Any, config: str | Mapping[str, Any], data_path: str | None, fold: int | None,
                 name: str, evaluation: Mapping[str, Any], tuning: Mapping[str, Any]) -> None:
        from .evaluation.tuning import RAY_ENGINES, trial_metrics

        self.ray = ray
        self.recipe = json.dumps({"config": config if isinstance(config, str) else dict(config),
                                  "data_path": data_path, "fold": fold, "validation": tuning["validation"],
                                  "seed": tuning["seed"]}, sort_keys=True, default=str)
        self.name = name
        self.metric = str(tuning["metric"])
        self.ev = trial_metrics(evaluation, self.metric)
        self.engine = tuning.get("ray_engine", "tune")
        if self.engine not in RAY_ENGINES:
            raise ParameterError(f"[tuning] ray_engine must be 'tune' or 'actors', got {self.engine!r}")
        self.batch = int(tuning.get("batch", 1))
        self.actors: list[Any] = []
        self.loading: list[Any] = []
        if self.engine == "actors":
            self.actors = _trial_pool(ray, self.batch)
            # every actor starts reading the data now; its first trial queues behind that
            self.loading = [a.load.remote(self.recipe) for a in self.actors]

    def load_seconds(self) -> list[tuple[float, float]]:
        """(wall, CPU) seconds each actor took to read and split the data (waits for them;
        empty with the Tune engine)."""
        return [tuple(x) for x in self.ray.get(self.loading)]

    def search(self, proposer: Any) -> None:
        """Run the whole search of ``proposer`` (see :class:`recseek.evaluation.tuning.Proposer`)."""
        if self.engine == "actors":
            while settings := proposer.next_batch():
                proposer.tell(self(settings))
            return
        from ray import tune

        trainable = tune.with_parameters(_tune_trial, recipe=self.recipe, name=self.name, ev=self.ev,
                                         metric=self.metric)
        tune_search(self.ray, proposer, trainable, self.batch)

    def __call__(self, settings: list[dict[str, Any]]) -> list[tuple[float, float]]:
        """One batch on the actor pool (the ``"actors"`` engine)."""
        if not self.actors:
            raise RuntimeError("RayTrialRunner runs batches on actors only with ray_engine = 'actors'")
        refs = [self.actors[j % len(self.actors)].run.remote(self.recipe, self.name, dict(p), self.ev, self.metric)
                for j, p in enumerate(settings)]
        return [tuple(x) for x in self.ray.get(refs)]
