"""The Ray backend on this machine: batch scoring with 1 vs 2 Ray workers, a 16-trial
tuning sweep on 2 Ray workers (Ray Tune, and the actor-pool engine) vs the same sweep run
locally one trial after another, and the engines' own overhead on trials that only sleep.

Every configuration runs in a fresh Python process (what a user's command costs, cold),
and each one reports where its time went, so that start-up and steady state are printed
side by side:

Scoring: WRMF (64 factors, 3 epochs) fitted on the 100,000-user synthetic power-law set of
``bench_scale_als.py`` (20,000 items; ``--nnz`` records, default 2,000,000 here to keep the
fit short), saved, then the top-10 of every user written by
:func:`recseek.evaluation.batch.score_file` (what ``recseek score`` runs):

- ``local``: the normal local path with its normal threads (numba and OpenBLAS on every
  core; the counts are printed). This is the baseline.
- ``Ray 1 worker`` / ``Ray 2 workers``: ``backend="ray"`` with a private Ray instance of 1
  or 2 CPUs; every actor holds one CPU and runs on one thread.
- ``local, 1 thread`` (reference only, not a baseline): the local path with numba and
  OpenBLAS on one thread, i.e. the work one Ray actor does, without Ray.

Columns: ``process`` the whole process (Python start, imports, Ray start, reading, scoring,
writing: the first-run figure); ``ray start`` starting the private instance; ``actors up``
from submitting the pipeline to the first batch (actor processes, imports, model load and
verification, numba cache); ``steady`` from the first batch to the last (scoring with warm
actors; locally the scoring step itself); ``write`` the CSV; ``CPU s`` the CPU seconds of
the steady scoring (the actors', or the local process's on all its threads) and ``cores``
that over ``steady``: the part of the machine the scoring was given. The ratio target (>= 1.6x) is
printed for the whole process and for the steady state. ``CPU s`` lists the CPU seconds of
the actors' scoring, of the driver while the pipeline ran, and of Ray's own processes
(GCS, raylet, monitors, agents, idle workers) over the whole run.

Sweep: EASE on ML-100K (ratings >= 4, per-user random 80/20, seed 0), ``reg`` log-uniform
in [1, 10^4], then BPR (``learning_rate`` log-uniform in [0.01, 0.2], ``reg`` in [1e-4,
0.1]; its SGD trains on one thread by default), 16 trials of TPE with ``batch = 2``:
locally (sequential, normal threads), with ``backend="ray", workers=2`` on Ray Tune (the default engine: Tune trials in reused
one-CPU trial processes that read the data once) and on the actor pool (``ray_engine =
"actors"``: two long-lived one-CPU actors that read the data once); all three give the
same trials (checked here). ``search`` is the wall time of the whole search; ``steady``
the wall time from the first batch told to the search to the last (batches 2-8: the
trial processes are up and hold the data), measured the same way for every engine.

Overhead: 16 trials that sleep one second, 2 at a time, on a private 2-CPU instance,
through Ray Tune (recseek's searcher, :func:`recseek.distributed.tune_search`) and through
a pool of two actors: the first batch (start-up) and what every later batch costs beyond
its second of sleep.

1 December 2026, the 2-vCPU VM with nothing else running (load 1.3-2.2 from this script):
scoring 2 vs 1 workers 1.10x whole process, 1.48x steady (1.64 cores obtained; Ray's own
processes 12 CPU s), and on 2 December 1.72x and 1.64x steady in two more runs; sweep steady
0.84x local on Ray Tune, 0.96x on the actor pool (a one-thread trial 0.56-0.61 s against
0.38 s locally on two threads, so about 0.75x at best); whole sweep process 10.1 s local,
22.7 s Tune, 20.5 s actors; the BPR sweep (2 December) steady 0.59x local on Tune and 0.58x
on the actor pool (a trial 0.63-0.65 s everywhere), whole process 14.7 s local, 26.5 s Tune,
22.7 s actors; sleep trials 13.0 s on Tune (first batch 5.7 s, +0.03 s per later batch) and
8.5 s on the actor pool (1.4 s, +0.01 s).
README ("Scaling out with Ray") has the full table.

Other users of the machine slow every figure; the load averages are printed beside them.

    .venv/bin/python benchmarks/bench_ray.py [--nnz 2000000] [--users 100000] [--only scoring|sweep|overhead]
        [--sweep-model EASE|BPR]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
TICK = os.sysconf("SC_CLK_TCK")
#: The environment as started: bench_scale_als (imported to make the data) pins BLAS to one
#: thread in this process, which the measured processes must not inherit.
_ENV0 = dict(os.environ)


# ------------------------------------------------------------------ measuring helpers
def _load() -> str:
    return " ".join(f"{x:.1f}" for x in os.getloadavg())


def _descendants(root: int) -> dict[int, tuple[str, float]]:
    """{pid: (command, CPU seconds)} of every living descendant of ``root`` (from /proc)."""
    parent: dict[int, int] = {}
    info: dict[int, tuple[str, float]] = {}
    for d in Path("/proc").iterdir():
        if not d.name.isdigit():
            continue
        try:
            stat = (d / "stat").read_text()
            cmd = (d / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace").strip()
        except OSError:
            continue
        fields = stat[stat.rindex(")") + 2:].split()
        parent[int(d.name)] = int(fields[1])
        info[int(d.name)] = (cmd or stat[stat.index("(") + 1:stat.rindex(")")], (int(fields[11]) + int(fields[12])) / TICK)
    out, todo = {}, [root]
    while todo:
        p = todo.pop()
        for c, pp in parent.items():
            if pp == p and c not in out:
                out[c] = info[c]
                todo.append(c)
    return out


def _ray_process_cpu(exclude: set[int]) -> dict[str, float]:
    """CPU seconds of this process's Ray processes, by kind, leaving out ``exclude`` (actors)."""
    kinds: dict[str, float] = {}
    for pid, (cmd, cpu) in _descendants(os.getpid()).items():
        if pid in exclude or "MapWorker" in cmd:  # the scoring actors (counted apart)
            continue
        name = cmd.split()[0].rsplit("/", 1)[-1]
        if name.startswith("python"):
            script = next((w for w in cmd.split()[1:] if w.endswith(".py")), name)
            name = script.rsplit("/", 1)[-1]
        kinds[name] = kinds.get(name, 0.0) + cpu
    return kinds


def _threads() -> dict[str, int]:
    """numba and BLAS thread counts of this process."""
    from recseek._numba import get_num_threads

    out = {"numba": get_num_threads()}
    try:
        import threadpoolctl

        blas = [p["num_threads"] for p in threadpoolctl.threadpool_info() if p.get("user_api") == "blas"]
        out["blas"] = max(blas) if blas else -1
    except ImportError:
        out["blas"] = -1
    return out


def _worker_threads(ray) -> dict[str, int]:
    """Thread counts inside a one-CPU Ray worker after recseek's one-thread set-up."""

    def probe() -> dict[str, object]:
        from recseek.distributed import _one_thread

        _one_thread()
        return {**_threads(), "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS")}

    return ray.get(ray.remote(num_cpus=1)(probe).remote())


# ------------------------------------------------------------------ child processes
def child_score(args: argparse.Namespace) -> dict:
    from recseek.evaluation.batch import score_file

    out: dict = {"threads": _threads()}
    t: dict = {}
    if args.backend == "local":
        score_file(args.model, args.users_file, args.out, 10, timings=t)
    else:
        from recseek.distributed import ray_session

        t0 = time.perf_counter()
        with ray_session(args.workers) as ray:
            out["ray_start"] = time.perf_counter() - t0
            out["worker_threads"] = _worker_threads(ray)  # before the actors take every CPU
            score_file(args.model, args.users_file, args.out, 10, backend="ray", workers=args.workers, timings=t)
            out["ray_cpu"] = _ray_process_cpu({a["pid"] for a in t["ray"]["per_actor"]})
    out["timings"] = t
    return out


#: The models swept: EASE's solve runs on every core in one process; BPR's SGD epochs run
#: on one thread by default (a fixed seed reproduces: lock-free training is opt-in), so a
#: local sweep of BPR uses one core whatever the machine has.
SWEEP_MODELS = {
    "EASE": {"name": "EASE", "reg": {"log_uniform": [1.0, 10000.0]}},
    "BPR": {"name": "BPR", "learning_rate": {"log_uniform": [0.01, 0.2]}, "reg": {"log_uniform": [1e-4, 0.1]}},
}


def _config(data: Path, model: str = "EASE") -> dict:
    return {
        "data": {"path": str(data), "format": "recbole", "min_rating": 4, "binarize": True},
        "split": {"method": "ratio", "ratio": 0.8, "order": "random", "seed": 0},
        "evaluation": {"task": "ranking", "k": 10, "metrics": ["ndcg"]},
        "models": [SWEEP_MODELS[model]],
        "tuning": {"trials": 16, "seed": 0, "batch": 2},
    }


def _record_tells() -> list[float]:
    """The wall clock of every batch told to the search (any engine), from now on."""
    from recseek.evaluation import tuning

    told: list[float] = []
    tell = tuning.Proposer.tell

    def timed(self, outcomes):
        tell(self, outcomes)
        told.append(time.perf_counter())

    tuning.Proposer.tell = timed
    return told


def child_sweep(args: argparse.Namespace) -> dict:
    from recseek.evaluation.experiment import run_experiment

    out: dict = {"threads": _threads()}
    cfg = _config(args.data, args.sweep_model)
    if args.engine:
        cfg["tuning"]["ray_engine"] = args.engine
    told = _record_tells()
    t0, c0 = time.perf_counter(), time.process_time()
    if args.backend == "local":
        result = run_experiment(cfg, progress=False)[0]
    else:
        from recseek.distributed import ray_session

        with ray_session(args.workers) as ray:
            out["ray_start"] = time.perf_counter() - t0
            t1 = time.perf_counter()
            out["worker_threads"] = _worker_threads(ray)  # before the sweep's actors take every CPU
            out["probe"] = time.perf_counter() - t1
            result = run_experiment(cfg, progress=False, backend="ray", workers=args.workers)[0]
            out["ray_cpu"] = _ray_process_cpu(set())
    out["run"] = time.perf_counter() - t0 - out.get("ray_start", 0.0) - out.get("probe", 0.0)
    out["cpu"] = time.process_time() - c0 + sum(out.get("ray_cpu", {}).values())
    search = result["tuning"][0]
    out["search"] = search["seconds"]
    # batches 2..8: from the first batch told to the last (start-up excluded)
    out["steady"] = told[-1] - told[0]
    out["batches"] = len(told)
    out["trials"] = [{k: t[k] for k in ("params", "value", "seconds")} for t in search["trials"]]
    out["chosen"] = result["params"]
    return out


def _run_child(kind: str, *extra: str, env: dict | None = None) -> tuple[float, dict]:
    t0 = time.perf_counter()
    p = subprocess.run([sys.executable, __file__, "--child", kind, *extra], capture_output=True, text=True,
                       env={**_ENV0, **(env or {})})
    wall = time.perf_counter() - t0
    if p.returncode != 0:
        raise SystemExit(f"{kind} child failed:\n{p.stderr[-3000:]}")
    return wall, json.loads(p.stdout.strip().splitlines()[-1])


def _same_lists(a: Path, b: Path) -> str:
    """Whether two score files hold the same items in the same order, and the largest score gap."""
    import pandas as pd

    x, y = pd.read_csv(a, dtype=str), pd.read_csv(b, dtype=str)
    if not x[["user", "rank", "item"]].equals(y[["user", "rank", "item"]]):
        return "no"
    gap = float(np.abs(x["score"].astype(np.float64) - y["score"].astype(np.float64)).max())
    return f"yes (largest score difference {gap:.1e})"


# ------------------------------------------------------------------ the two jobs
def scoring(nnz: int, n_users: int, tmp: Path) -> None:
    sys.path.insert(0, str(HERE))
    from bench_scale_als import generate
    from recseek.data import Interactions
    from recseek.models import create

    u, i = generate(100_000, 20_000, nnz)
    data = Interactions.from_arrays(u, i)
    model = create("WRMF", factors=64, epochs=3, verbose=False).fit(data)
    path = model.save(tmp / "wrmf")
    users = tmp / "users.txt"
    users.write_text("\n".join(str(x) for x in data.users.ids[:n_users]) + "\n")
    runs = [("local", "local", None, None), ("local, 1 thread (reference)", "local", None,
                                              {"NUMBA_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1",
                                               "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}),
            ("Ray 1 worker", "ray", 1, None), ("Ray 2 workers", "ray", 2, None)]
    print(f"scoring {n_users:,} users, top-10, WRMF 64 factors x 20,000 items ({nnz:,} training records)")
    print(f"{'':52s} {'process':>8s} {'ray start':>9s} {'actors up':>9s} {'steady':>8s} {'write':>6s}"
          f" {'users/s':>8s} {'CPU s':>6s} {'cores':>5s}  load average")
    got: dict[str, tuple[float, dict]] = {}
    for label, backend, w, env in runs:
        out = tmp / f"{label.split(',')[0].replace(' ', '_')}{w or ''}.csv"
        extra = ["--backend", backend, "--model", str(path), "--users-file", str(users), "--out", str(out)]
        if w:
            extra += ["--workers", str(w)]
        wall, r = _run_child("score", *extra, env=env)
        got[label] = (wall, r)
        t = r["timings"]
        if backend == "ray":
            s = t["ray"]
            start, up, steady = r["ray_start"], s["startup_s"], s["steady_s"]
            cpu = sum(a["cpu_s"] for a in s["per_actor"])
            label_full = label
        else:
            start, up, steady, cpu = 0.0, 0.0, t["score"], t["score_cpu"]
            label_full = f"{label} [numba {r['threads']['numba']}, BLAS {r['threads']['blas']} threads]"
        # cores: CPU seconds of the scoring over its wall time, i.e. the share of the machine it got
        print(f"{label_full:52s} {wall:8.1f} {start:9.1f} {up:9.1f} {steady:8.1f} {t['write']:6.1f}"
              f" {n_users / steady:8.0f} {cpu:6.1f} {cpu / steady:5.2f}  {_load()}")
        if backend == "ray":
            busy = ", ".join(f"{a['batches']} blocks {a['busy_s']:.1f} s busy / {a['cpu_s']:.1f} CPU s"
                             for a in s["per_actor"])
            ray_cpu = sum(r["ray_cpu"].values())
            top = ", ".join(f"{k} {v:.1f}" for k, v in sorted(r["ray_cpu"].items(), key=lambda kv: -kv[1])[:6])
            print(f"    actors: {busy}; numba threads in the scoring calls "
                  f"{sorted({a['numba_threads'] for a in s['per_actor']})}; actor start-up "
                  f"{max(a['startup_s'] for a in s['per_actor']):.1f} s; driver CPU during the pipeline "
                  f"{s['driver_cpu_s']:.1f} s")
            print(f"    Ray's own processes: {ray_cpu:.1f} CPU s ({top}); a one-CPU worker runs numba "
                  f"{r['worker_threads']['numba']} / BLAS {r['worker_threads']['blas']} thread(s) "
                  f"(OMP_NUM_THREADS={r['worker_threads']['OMP_NUM_THREADS']})")
            print(f"    same lists as the local path: {_same_lists(out, tmp / 'local.csv')}")
    (w1, r1), (w2, r2) = got["Ray 1 worker"], got["Ray 2 workers"]
    s1, s2 = r1["timings"]["ray"]["steady_s"], r2["timings"]["ray"]["steady_s"]
    local = got["local"][1]["timings"]["score"]
    one = got["local, 1 thread (reference)"][1]["timings"]["score"]
    print(f"ratio 1 worker / 2 workers: whole process {w1 / w2:.2f}x, steady scoring {s1 / s2:.2f}x (target >= 1.6x)")
    print(f"local scoring on its normal threads vs on 1 thread: {one / local:.2f}x faster; "
          f"Ray 2 workers steady vs local steady: {local / s2:.2f}x; Ray 1 worker steady vs local 1 thread: "
          f"{one / s1:.2f}x")


def sweep(data: Path, model: str) -> None:
    space = ", ".join(k for k in SWEEP_MODELS[model] if k != "name")
    print(f"sweep: {model} {space} on ML-100K, 16 TPE trials in batches of 2")
    print(f"{'':40s} {'process':>8s} {'ray start':>9s} {'run':>6s} {'search':>7s} {'steady':>7s} {'CPU s':>6s}"
          f"  load average")
    got = {}
    for label, backend, w, engine in (("local, sequential", "local", None, None),
                                      ("Ray Tune, 2 workers", "ray", 2, "tune"),
                                      ("Ray actor pool, 2 workers", "ray", 2, "actors")):
        extra = ["--backend", backend, "--data", str(data), "--sweep-model", model] + (["--workers", str(w), "--engine", engine] if w else [])
        wall, r = _run_child("sweep", *extra)
        got[engine or "local"] = (wall, r)
        name = label if backend == "ray" else f"{label} [numba {r['threads']['numba']}, BLAS {r['threads']['blas']}]"
        print(f"{name:40s} {wall:8.1f} {r.get('ray_start', 0.0):9.1f} {r['run']:6.1f} {r['search']:7.1f}"
              f" {r['steady']:7.1f} {r['cpu']:6.1f}  {_load()}")
        if backend == "ray":
            top = ", ".join(f"{k} {v:.1f}" for k, v in sorted(r["ray_cpu"].items(), key=lambda kv: -kv[1])[:6])
            print(f"    Ray's processes (the trial processes included): {sum(r['ray_cpu'].values()):.1f} CPU s ({top})")
            print(f"    first batch (trial processes starting, reading the data, kernel cache): "
                  f"{r['search'] - r['steady']:.1f} s of the {r['search']:.1f} s search")
    (wl, rl) = got["local"]
    for engine in ("tune", "actors"):
        wr, rr = got[engine]
        same = [t["params"] for t in rl["trials"]] == [t["params"] for t in rr["trials"]]
        print(f"ratio {engine} / local: whole process {wr / wl:.2f}x, search {rr['search'] / rl['search']:.2f}x, "
              f"steady (batches 2-8) {rr['steady'] / rl['steady']:.2f}x (target <= 0.6x); same trials: {same}")
    rt, ra = got["tune"][1], got["actors"][1]
    print(f"Tune / actor pool: search {rt['search'] / ra['search']:.2f}x, steady {rt['steady'] / ra['steady']:.2f}x; "
          f"chosen {json.dumps(rl['chosen'])}")
    print(f"one trial, median: local {np.median([t['seconds'] for t in rl['trials']]):.2f} s (normal threads), "
          f"Tune {np.median([t['seconds'] for t in rt['trials']]):.2f} s, actor "
          f"{np.median([t['seconds'] for t in ra['trials']]):.2f} s (one thread)")


# ------------------------------------------------------------------ Tune's own overhead
def _sleep_trial(config: dict) -> None:
    from ray import tune

    time.sleep(SLEEP_S)
    tune.report({"value": 1.0, "seconds": SLEEP_S})


SLEEP_S = 1.0


def child_overhead(args: argparse.Namespace) -> dict:
    """16 trials that sleep one second, at most 2 at once, through the sweep's engine."""
    from recseek.distributed import ray_session, tune_search
    from recseek.evaluation.tuning import Proposer, Space

    told = _record_tells()
    proposer = Proposer({}, {"x": Space("uniform", 0.0, 1.0)},
                        {"seed": 0, "sampler": "random", "trials": 16, "batch": 2}, "maximize")
    with ray_session(2) as ray:
        t0 = time.perf_counter()
        if args.engine == "tune":
            tune_search(ray, proposer, _sleep_trial, 2)
        else:
            @ray.remote(num_cpus=1)
            class Sleeper:
                def run(self, setting: dict) -> tuple[float, float]:
                    time.sleep(SLEEP_S)
                    return 1.0, SLEEP_S

            pool = [Sleeper.remote() for _ in range(2)]  # the pool engine's batch loop, on sleepers
            while settings := proposer.next_batch():
                proposer.tell(ray.get([pool[j % 2].run.remote(p) for j, p in enumerate(settings)]))
        total = time.perf_counter() - t0
    return {"total": total, "first": told[0] - t0, "steady": told[-1] - told[0], "batches": len(told)}


def overhead() -> None:
    print(f"engine overhead: 16 trials that sleep {SLEEP_S:.0f} s, 2 at a time (ideal 8 s; 7 s after the first batch)")
    print(f"{'':24s} {'total':>6s} {'1st batch':>9s} {'batches 2-8':>11s} {'per batch':>9s}  load average")
    for engine in ("tune", "actors"):
        wall, r = _run_child("overhead", "--engine", engine)
        per = (r["steady"] - 7 * SLEEP_S) / 7
        print(f"{'Ray Tune' if engine == 'tune' else 'actor pool':24s} {r['total']:6.1f} {r['first']:9.1f}"
              f" {r['steady']:11.1f} {per:+9.2f}  {_load()}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--nnz", type=int, default=2_000_000)
    ap.add_argument("--users", type=int, default=100_000, help="users scored (the first N of the set)")
    ap.add_argument("--data", type=Path, default=HERE.parent.parent / "shared" / "data" / "ml-100k")
    ap.add_argument("--only", choices=["scoring", "sweep", "overhead"], default=None)
    ap.add_argument("--sweep-model", choices=sorted(SWEEP_MODELS), default=None,
                    help="the model of the sweep (default: EASE, then BPR)")
    ap.add_argument("--child", choices=["score", "sweep", "overhead"], help=argparse.SUPPRESS)
    ap.add_argument("--engine", choices=["tune", "actors"], default=None, help=argparse.SUPPRESS)
    ap.add_argument("--backend", default="local", help=argparse.SUPPRESS)
    ap.add_argument("--workers", type=int, default=None, help=argparse.SUPPRESS)
    ap.add_argument("--model", help=argparse.SUPPRESS)
    ap.add_argument("--users-file", help=argparse.SUPPRESS)
    ap.add_argument("--out", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        child = {"score": child_score, "sweep": child_sweep, "overhead": child_overhead}[args.child]
        print(json.dumps(child(args), default=float))
        return
    np.random.seed(0)
    auto = Path("/proc/sys/kernel/sched_autogroup_enabled")
    group = "on" if auto.exists() and auto.read_text().strip() == "1" else "off"
    print(f"{os.cpu_count()} CPUs; load average at the start {_load()}; Linux autogroup scheduling {group} "
          "(when on, busy CPUs are shared fairly between sessions, so one command's processes, Ray's "
          "included, share one session's part)")
    with tempfile.TemporaryDirectory() as d:
        if args.only in (None, "scoring"):
            scoring(args.nnz, args.users, Path(d))
        if args.only in (None, "sweep"):
            for model in [args.sweep_model] if args.sweep_model else ["EASE", "BPR"]:
                sweep(args.data, model)
        if args.only in (None, "overhead"):
            overhead()


if __name__ == "__main__":
    main()
