"""Speed and memory of a full-ranking evaluation with every ranking metric.

1. MovieLens-100K (943 users, 1,682 items, random 80/20 split of all ratings),
   MostPopular, k=10, all ranking metrics (``auc_full`` and ``diversity`` included):
   the vectorised protocol beside a plain per-user Python loop computing the same
   list metrics from the same ``recommend`` output (ratio printed). Target < 0.5 s.
2. Synthetic power-law data, 100,000 users x 20,000 items: time and peak memory.

Synthetic generator (:func:`power_law`), parameters printed by the script:
- user activity: ``2 + floor(Pareto(shape=1.2))`` scaled so the mean is about
  ``interactions / users`` (10), capped at 2,000 per user;
- item popularity: Zipf-like, ``p(i) ∝ (i + 1) ** -0.9`` over a random permutation of
  the items; each user's items are drawn from it (repeats merged), seed 0.

    python benchmarks/bench_evaluation.py [--data /path/to/ml-100k] [--users 100000 --items 20000]
"""

from __future__ import annotations

import argparse
import math
import resource
import sys
import time
import tracemalloc
from pathlib import Path

import numpy as np

ALL_METRICS = ["precision", "recall", "recall_capped", "ndcg", "map", "mrr", "hitrate", "auc", "auc_full",
               "novelty", "coverage", "gini", "diversity"]


def power_law(n_users: int, n_items: int, interactions: int, seed: int = 0,
              user_shape: float = 1.2, item_exponent: float = 0.9, max_per_user: int = 2000):
    """Synthetic implicit feedback with power-law user activity and item popularity."""
    from recseek.data import Interactions

    rng = np.random.default_rng(seed)
    raw = rng.pareto(user_shape, n_users) + 1.0
    deg = np.minimum(np.maximum(2, np.floor(raw / raw.mean() * interactions / n_users)), max_per_user).astype(np.int64)
    p = (np.arange(n_items) + 1.0) ** -item_exponent
    p /= p.sum()
    perm = rng.permutation(n_items)
    items = perm[rng.choice(n_items, size=int(deg.sum()), p=p)]
    users = np.repeat(np.arange(n_users), deg)
    t = rng.random(users.size)
    return Interactions.from_arrays(users, items, None, t)


def per_user_loop(model, train, test, k: int) -> dict[str, float]:
    """Reference: the list metrics computed user by user in Python."""
    users = np.flatnonzero(np.diff(test.matrix.indptr) > 0)
    ranking = model.recommend(users, k)
    sums = {"precision": 0.0, "recall": 0.0, "ndcg": 0.0, "map": 0.0, "mrr": 0.0}
    for r, u in enumerate(users):
        rel = set(test.items_of(u).tolist())
        ids = [int(i) for i in ranking.ids[r] if i >= 0]
        hits = [i in rel for i in ids]
        h = sum(hits)
        sums["precision"] += h / k
        sums["recall"] += h / len(rel)
        dcg = sum(1 / math.log2(j + 2) for j, x in enumerate(hits) if x)
        idcg = sum(1 / math.log2(j + 2) for j in range(min(len(rel), len(ids))))
        sums["ndcg"] += dcg / idcg if idcg else 0.0
        c, ap = 0, 0.0
        for j, x in enumerate(hits):
            if x:
                c += 1
                ap += c / (j + 1)
        sums["map"] += ap / min(len(rel), len(ids)) if ids else 0.0
        sums["mrr"] += next((1 / (j + 1) for j, x in enumerate(hits) if x), 0.0)
    return {key: v / len(users) for key, v in sums.items()}


def timed(fn, repeat: int = 3):
    best, out = float("inf"), None
    for _ in range(repeat):
        t0 = time.perf_counter()
        out = fn()
        best = min(best, time.perf_counter() - t0)
    return best, out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data", type=Path, default=None, help="MovieLens-100K folder (default: recseek.datasets)")
    ap.add_argument("--users", type=int, default=100_000)
    ap.add_argument("--items", type=int, default=20_000)
    ap.add_argument("--interactions", type=int, default=1_000_000)
    args = ap.parse_args(argv)

    from recseek import datasets
    from recseek.data.split import split
    from recseek.evaluation import evaluate_ranking
    from recseek.models import create

    # ---------------------------------------------------------------- ML-100K
    data = datasets.load("ml-100k", path=None if args.data is None else str(args.data))
    train, test = split(data, "random", ratio=0.8, seed=0)
    model = create("MostPopular").fit(train)
    evaluate_ranking(model, train, test, metrics=ALL_METRICS)  # compile numba kernels once
    t_vec, res = timed(lambda: evaluate_ranking(model, train, test, metrics=ALL_METRICS))
    t_list, _ = timed(lambda: evaluate_ranking(model, train, test,
                                               metrics=["precision", "recall", "ndcg", "map", "mrr"]))
    t_loop, ref = timed(lambda: per_user_loop(model, train, test, 10))
    test_users = np.flatnonzero(np.diff(test.matrix.indptr) > 0)
    t_rec, _ = timed(lambda: model.recommend(test_users, 10))
    for key in ref:
        assert abs(res[f"{key}@10"] - ref[key]) < 1e-9, key
    print(f"ML-100K: {data.n_users} users x {data.n_items} items, test users "
          f"{int((np.diff(test.matrix.indptr) > 0).sum())}, MostPopular, k=10")
    print(f"  all {len(ALL_METRICS)} metrics (incl. auc_full, diversity): {t_vec * 1000:.0f} ms "
          f"(target < 500 ms)")
    print(f"  5 list metrics: recseek {t_list * 1000:.0f} ms vs per-user Python loop {t_loop * 1000:.0f} ms "
          f"-> {t_loop / t_list:.1f}x faster (of which model.recommend {t_rec * 1000:.0f} ms)")
    print("  " + ", ".join(f"{k} {v:.4f}" for k, v in res.items()))

    # ---------------------------------------------------------------- synthetic
    print(f"\nsynthetic power law: {args.users} users x {args.items} items, ~{args.interactions} interactions "
          f"(user activity 2 + Pareto(1.2) scaled to mean {args.interactions / args.users:.0f}, cap 2000; "
          f"item popularity (rank+1)^-0.9; seed 0)")
    big = power_law(args.users, args.items, args.interactions)
    tr, te = split(big, "random", ratio=0.8, seed=0)
    pop = create("MostPopular").fit(tr)
    print(f"  {big.nnz} interactions after merging repeats; train {tr.nnz}, test {te.nnz}")
    rss0 = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    tracemalloc.start()
    t0 = time.perf_counter()
    res = evaluate_ranking(pop, tr, te, metrics=ALL_METRICS)
    t_all = time.perf_counter() - t0
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    t_fast, _ = timed(lambda: evaluate_ranking(pop, tr, te, metrics=[m for m in ALL_METRICS if m != "auc_full"]), 1)
    t_rec, _ = timed(lambda: pop.recommend(np.flatnonzero(np.diff(te.matrix.indptr) > 0), 10), 1)
    rss1 = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    print(f"  all metrics: {t_all:.2f} s (under tracemalloc), peak traced memory {peak / 2**20:.0f} MiB; "
          f"without auc_full: {t_fast:.2f} s, of which model.recommend (the shared top-k) {t_rec:.2f} s")
    print(f"  process max RSS {rss1 / 1024:.0f} MiB (before the evaluation {rss0 / 1024:.0f} MiB)")
    print("  " + ", ".join(f"{k} {v:.4f}" for k, v in res.items()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
