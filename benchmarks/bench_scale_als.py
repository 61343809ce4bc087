"""Scale: WRMF against implicit's ALS on synthetic power-law data (time per epoch, memory).

Data generator (cached as .npy under ``--cache``, default /tmp): ``--users`` users
(100,000) x ``--items`` items (20,000). The user of each record is drawn with probability
proportional to ``(rank + 1) ** -0.6`` over a random permutation of the users, its item
with probability proportional to ``(rank + 1) ** -0.8`` over a random permutation of the
items (Zipf-like activity and popularity, seed 0; the most active user then has about
12,800 interactions and the median user 67; the most popular item about 89,000 and the
median item 224); duplicate pairs are dropped
and drawing continues until ``--nnz`` (10,000,000) distinct pairs exist. Values are 1.

Both models use 64 factors, regularisation 0.05, 3 conjugate-gradient steps and all
cores (BLAS on one thread). Each runs in its own subprocess so that its peak resident
memory can be read; the figure printed is the peak minus the resident size after the
data was loaded (the training matrix itself is not counted for either). Time per epoch
is the fit time of ``--epochs`` iterations divided by the number of iterations, after a
warm-up fit on a small sample (numba compilation).

    .venv/bin/python benchmarks/bench_scale_als.py [--nnz 10000000] [--epochs 3]
"""

from __future__ import annotations

import os

for _var in ("OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "BLIS_NUM_THREADS"):
    os.environ[_var] = "1"

import argparse  # noqa: E402
import json  # noqa: E402
import resource  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402


def generate(n_users: int, n_items: int, nnz: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Distinct (user, item) pairs with power-law user activity and item popularity."""
    rng = np.random.default_rng(seed)
    cu = np.cumsum(((np.arange(n_users) + 1.0) ** -0.6)[rng.permutation(n_users)])
    ci = np.cumsum(((np.arange(n_items) + 1.0) ** -0.8)[rng.permutation(n_items)])
    keys = np.zeros(0, dtype=np.int64)
    while keys.size < nnz:
        draw = int((nnz - keys.size) * 1.1) + 1000
        u = np.minimum(np.searchsorted(cu, rng.random(draw) * cu[-1], side="right"), n_users - 1)
        i = np.minimum(np.searchsorted(ci, rng.random(draw) * ci[-1], side="right"), n_items - 1)
        keys = np.unique(np.concatenate([keys, u.astype(np.int64) * n_items + i]))
    keys = rng.permutation(keys)[:nnz]
    return (keys // n_items).astype(np.int64), (keys % n_items).astype(np.int64)


def cached(args) -> tuple[Path, Path]:
    base = Path(args.cache) / f"recseek_scale_{args.users}x{args.items}_{args.nnz}"
    pu, pi = Path(f"{base}_users.npy"), Path(f"{base}_items.npy")
    if not (pu.exists() and pi.exists()):
        u, i = generate(args.users, args.items, args.nnz)
        np.save(pu, u, allow_pickle=False)
        np.save(pi, i, allow_pickle=False)
    return pu, pi


def rss_mb() -> float:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def reset_peak() -> None:
    """Reset the kernel's peak-RSS counter of this process (Linux) so that VmHWM measures the fit."""
    with open("/proc/self/clear_refs", "w") as f:
        f.write("5")


def peak_mb() -> float:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def worker(which: str, pu: str, pi: str, n_users: int, n_items: int, epochs: int) -> dict:
    from recseek.data import Interactions

    u, i = np.load(pu), np.load(pi)
    data = Interactions.from_arrays(u, i, user_vocab=None, item_vocab=None)
    del u, i
    small = data.subset(np.arange(data.nnz) < 20000)
    if which == "implicit":
        import scipy.sparse as sp
        from implicit.cpu.als import AlternatingLeastSquares

        ui = sp.csr_matrix(data.matrix, dtype=np.float32)
        AlternatingLeastSquares(factors=64, iterations=1, random_state=0).fit(
            sp.csr_matrix(small.matrix, dtype=np.float32), show_progress=False)
        model = AlternatingLeastSquares(factors=64, regularization=0.05, iterations=epochs, random_state=0)
        fit = lambda: model.fit(ui, show_progress=False)  # noqa: E731
    else:
        from recseek.models.factorization.wrmf import WRMF

        WRMF(factors=64, epochs=1).fit(small)
        model = WRMF(factors=64, reg=0.05, epochs=epochs, cg_steps=3)
        fit = lambda: model.fit(data)  # noqa: E731
    base = rss_mb()
    reset_peak()
    t0 = time.perf_counter()
    fit()
    secs = time.perf_counter() - t0
    peak = peak_mb()
    return {"epoch_s": secs / epochs, "extra_mb": peak - base}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--users", type=int, default=100_000)
    ap.add_argument("--items", type=int, default=20_000)
    ap.add_argument("--nnz", type=int, default=10_000_000)
    ap.add_argument("--epochs", type=int, default=3)
    ap.add_argument("--cache", default="/tmp")
    ap.add_argument("--worker", choices=["implicit", "recseek"])
    ap.add_argument("--paths", nargs=2)
    args = ap.parse_args()
    if args.worker:
        print(json.dumps(worker(args.worker, *args.paths, args.users, args.items, args.epochs)))
        return
    t0 = time.perf_counter()
    pu, pi = cached(args)
    print(f"data: {args.users} users x {args.items} items, {args.nnz} interactions "
          f"(ready in {time.perf_counter() - t0:.1f} s, cached in {pu.parent})")
    results = {}
    for which in ("implicit", "recseek"):
        cmd = [sys.executable, __file__, "--worker", which, "--paths", str(pu), str(pi),
               "--users", str(args.users), "--items", str(args.items), "--epochs", str(args.epochs)]
        out = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout
        results[which] = json.loads(out.strip().splitlines()[-1])
    ref = results["implicit"]
    print(f"{'model':28s} {'s/epoch':>8s} {'peak extra MB':>14s} {'time ratio':>10s} {'memory ratio':>12s}")
    for which, label in (("implicit", "implicit ALS"), ("recseek", "recseek WRMF")):
        r = results[which]
        print(f"{label:28s} {r['epoch_s']:8.2f} {r['extra_mb']:14.0f} {r['epoch_s'] / ref['epoch_s']:10.2f} "
              f"{r['extra_mb'] / ref['extra_mb']:12.2f}")


if __name__ == "__main__":
    main()
