"""Scale: recseek BPR vs implicit BayesianPersonalizedRanking on 10M synthetic interactions.

Generator (power-law activity on both sides, seed 0):
  * 100,000 users x 20,000 items;
  * user u's expected activity is proportional to (rank_u + 1) ** -0.8, capped at 2,000
    items (10% of the catalogue) so that no user saturates; a record draws its user in
    proportion to that activity and its item with probability proportional to
    (rank_i + 1) ** -0.9 (ranks are a random permutation of the ids, so popular ids are
    scattered);
  * duplicate (user, item) pairs are dropped and drawing continues until at least
    10,000,000 distinct pairs exist; a random 10,000,000 of them are kept.
The arrays are cached as .npy under $TMPDIR (default /tmp) after the first run.

Both models: 64 factors, default learning rates, one sample per interaction per epoch,
all cores of the machine (``--threads``). Printed: seconds per epoch (median of the timed
epochs after one warm-up epoch) and peak memory of each fit (tracemalloc: Python and
numpy allocations made during ``fit``), with the ratios recseek / implicit.

Usage: python benchmarks/bench_scale_bpr.py [--records 10000000] [--epochs 3] [--threads 2]
"""

from __future__ import annotations

import os

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import argparse  # noqa: E402
import resource  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
import tracemalloc  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402
import scipy.sparse as sp  # noqa: E402

N_USERS = 100_000
N_ITEMS = 20_000
USER_EXPONENT = 0.8
USER_CAP = 2_000
ITEM_EXPONENT = 0.9


def generate(n_records: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Distinct (user, item) pairs with power-law user and item activity (see module doc)."""
    cache = Path(tempfile.gettempdir()) / f"recseek_scale_{n_records}_{seed}"
    if (cache / "users.npy").exists():
        return np.load(cache / "users.npy"), np.load(cache / "items.npy")
    rng = np.random.default_rng(seed)
    activity = (np.arange(N_USERS) + 1.0) ** -USER_EXPONENT
    activity = np.minimum(activity / activity.sum() * n_records, USER_CAP)
    user_cdf = np.cumsum(activity)
    item_cdf = np.cumsum((np.arange(N_ITEMS) + 1.0) ** -ITEM_EXPONENT)
    user_perm = rng.permutation(N_USERS)
    item_perm = rng.permutation(N_ITEMS)
    keys = np.zeros(0, dtype=np.int64)
    while keys.size < n_records:
        m = int((n_records - keys.size) * 1.5) + 1000
        u = user_perm[np.searchsorted(user_cdf, rng.random(m) * user_cdf[-1])]
        i = item_perm[np.searchsorted(item_cdf, rng.random(m) * item_cdf[-1])]
        keys = np.unique(np.concatenate([keys, u.astype(np.int64) * N_ITEMS + i]))
    keys = rng.choice(keys, n_records, replace=False)
    users, items = (keys // N_ITEMS).astype(np.int32), (keys % N_ITEMS).astype(np.int32)
    cache.mkdir(exist_ok=True)
    np.save(cache / "users.npy", users)
    np.save(cache / "items.npy", items)
    return users, items


def peak_mb(fn) -> tuple[float, object]:
    tracemalloc.start()
    tracemalloc.reset_peak()
    out = fn()
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    return peak / 2**20, out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--records", type=int, default=10_000_000)
    ap.add_argument("--epochs", type=int, default=3, help="timed epochs per library")
    ap.add_argument("--threads", type=int, default=os.cpu_count() or 1)
    args = ap.parse_args()

    import numba
    from implicit.cpu.bpr import BayesianPersonalizedRanking

    from recseek.data import Interactions
    from recseek.models import create

    numba.set_num_threads(min(args.threads, numba.config.NUMBA_NUM_THREADS))
    t0 = time.perf_counter()
    users, items = generate(args.records)
    data = Interactions.from_arrays(users, items)
    X = sp.csr_matrix(data.matrix)
    per_user = np.diff(data.matrix.indptr)
    per_item = np.bincount(data.matrix.indices, minlength=data.n_items)
    print(f"{data.nnz:,} interactions, {data.n_users:,} users x {data.n_items:,} items "
          f"(max per user {per_user.max()}, median {int(np.median(per_user))}; max per item {per_item.max()}, "
          f"median {int(np.median(per_item))}); prepared in {time.perf_counter() - t0:.1f}s, threads={args.threads}")

    # warm-up: numba compilation and OpenMP start-up
    small = data.subset(np.arange(data.nnz) < 10_000)
    create("BPR", factors=64, epochs=1).fit(small)
    BayesianPersonalizedRanking(factors=64, iterations=1, num_threads=args.threads).fit(
        sp.csr_matrix(small.matrix), show_progress=False)

    def ours_fit():
        return create("BPR", factors=64, epochs=args.epochs, seed=0).fit(data)

    def theirs_fit():
        m = BayesianPersonalizedRanking(factors=64, iterations=args.epochs, num_threads=args.threads, random_state=0)
        m.fit(X, show_progress=False)
        return m

    t0 = time.perf_counter()
    ours_mem, _ = peak_mb(ours_fit)
    ours_s = (time.perf_counter() - t0) / args.epochs
    t0 = time.perf_counter()
    theirs_mem, _ = peak_mb(theirs_fit)
    theirs_s = (time.perf_counter() - t0) / args.epochs
    # timings without tracemalloc's overhead
    t0 = time.perf_counter()
    ours_fit()
    ours_s = min(ours_s, (time.perf_counter() - t0) / args.epochs)
    t0 = time.perf_counter()
    theirs_fit()
    theirs_s = min(theirs_s, (time.perf_counter() - t0) / args.epochs)
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"{'model':<26}{'s/epoch':>9}{'peak MB (fit)':>15}")
    print(f"{'recseek BPR (64 f)':<26}{ours_s:>9.3f}{ours_mem:>15.1f}")
    print(f"{'implicit BPR (64 f)':<26}{theirs_s:>9.3f}{theirs_mem:>15.1f}")
    print(f"ratios recseek/implicit: time per epoch {ours_s / theirs_s:.2f}x, peak fit memory "
          f"{ours_mem / theirs_mem:.2f}x (target time <= 1.0x); process max RSS {rss:.0f} MB")


if __name__ == "__main__":
    main()
