"""The Ray backend on this machine: batch scoring with 1 vs 2 Ray workers, and a 16-trial
tuning sweep on Ray (trials in batches of 2, one per worker) vs the same sweep run locally
one trial after another.

Scoring: WRMF (64 factors, 3 epochs) fitted on the 100,000-user synthetic power-law set of
``bench_scale_als.py`` (20,000 items; ``--nnz`` records, default 2,000,000 here to keep the
fit short), saved, then the top-10 of every user written by ``recseek score`` with
``--backend ray --workers 1`` and ``--workers 2`` (each with its own private Ray instance; the
time includes starting Ray and loading the model in every actor, reported separately by a
run with 1,000 users). The local path (no Ray) is shown beside them.

Sweep: EASE on ML-100K (ratings >= 4, per-user random 80/20, seed 0), ``reg`` log-uniform
in [1, 10^4], 16 trials of TPE with ``batch = 2``: locally (sequential) and with
``--backend ray --workers 2``; both give the same trials (checked here).

    .venv/bin/python benchmarks/bench_ray.py [--nnz 2000000] [--data ../shared/data/ml-100k]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent


def _score(model: Path, users: Path, out: Path, *extra: str) -> float:
    t0 = time.perf_counter()
    subprocess.run([sys.executable, "-m", "recseek", "score", str(model), "--users", str(users), "--out", str(out),
                    *extra], check=True, capture_output=True)
    return time.perf_counter() - t0


def _same_lists(a: Path, b: Path) -> str:
    """Whether two score files hold the same items in the same order, and the largest score gap."""
    import pandas as pd

    x, y = pd.read_csv(a, dtype=str), pd.read_csv(b, dtype=str)
    if not x[["user", "rank", "item"]].equals(y[["user", "rank", "item"]]):
        return "no"
    gap = float(np.abs(x["score"].astype(np.float64) - y["score"].astype(np.float64)).max())
    return f"yes (largest score difference {gap:.1e})"


def scoring(nnz: int, tmp: Path) -> None:
    sys.path.insert(0, str(HERE))
    from bench_scale_als import generate
    from recseek.data import Interactions
    from recseek.models import create

    u, i = generate(100_000, 20_000, nnz)
    data = Interactions.from_arrays(u, i)
    model = create("WRMF", factors=64, epochs=3, verbose=False).fit(data)
    path = model.save(tmp / "wrmf")
    everyone, few = tmp / "users.txt", tmp / "few.txt"
    ids = [str(x) for x in data.users.ids]
    everyone.write_text("\n".join(ids) + "\n")
    few.write_text("\n".join(ids[:1000]) + "\n")
    local = _score(path, everyone, tmp / "local.csv")
    rows = {}
    for w in (1, 2):
        start = _score(path, few, tmp / f"few{w}.csv", "--backend", "ray", "--workers", str(w))
        full = _score(path, everyone, tmp / f"ray{w}.csv", "--backend", "ray", "--workers", str(w))
        rows[w] = (start, full)
        same = _same_lists(tmp / f"ray{w}.csv", tmp / "local.csv")
        print(f"score 100,000 users, Ray {w} worker(s): {full:7.1f} s (1,000 users: {start:5.1f} s, "
              f"start-up and model loading); same lists as the local path: {same}")
    print(f"score 100,000 users, local (no Ray): {local:7.1f} s")
    print(f"ratio 1 worker / 2 workers: {rows[1][0 + 1] / rows[2][1]:.2f}x (target >= 1.6x); "
          f"net of start-up: {(rows[1][1] - rows[1][0]) / max(rows[2][1] - rows[2][0], 1e-9):.2f}x")


def sweep(data: Path, tmp: Path) -> None:
    from recseek.evaluation.experiment import run_experiment

    cfg = {
        "data": {"path": str(data), "format": "recbole", "min_rating": 4, "binarize": True},
        "split": {"method": "ratio", "ratio": 0.8, "order": "random", "seed": 0},
        "evaluation": {"task": "ranking", "k": 10, "metrics": ["ndcg"]},
        "models": [{"name": "EASE", "reg": {"log_uniform": [1.0, 10000.0]}}],
        "tuning": {"trials": 16, "seed": 0, "batch": 2},
    }
    t0 = time.perf_counter()
    local = run_experiment(cfg, progress=False)[0]
    t1 = time.perf_counter()
    remote = run_experiment(cfg, progress=False, backend="ray", workers=2)[0]
    t2 = time.perf_counter()
    same = [t["params"] for t in local["tuning"][0]["trials"]] == [t["params"] for t in remote["tuning"][0]["trials"]]
    print(f"16-trial sweep, local sequential: {t1 - t0:6.1f} s; Ray 2 workers: {t2 - t1:6.1f} s; "
          f"ratio {(t2 - t1) / (t1 - t0):.2f}x (target <= 0.6x); same trials: {same}; "
          f"chosen reg {json.dumps(local['params'])}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--nnz", type=int, default=2_000_000)
    ap.add_argument("--data", type=Path, default=HERE.parent.parent / "shared" / "data" / "ml-100k")
    ap.add_argument("--only", choices=["scoring", "sweep"], default=None)
    args = ap.parse_args()
    np.random.seed(0)
    with tempfile.TemporaryDirectory() as d:
        if args.only in (None, "scoring"):
            scoring(args.nnz, Path(d))
        if args.only in (None, "sweep"):
            sweep(args.data, Path(d))


if __name__ == "__main__":
    main()
