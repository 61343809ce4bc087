"""P3: recseek BPR vs implicit BayesianPersonalizedRanking on MovieLens-100K, side by side.

Protocol (PROTOCOLS.md, P3): ratings >= 4 are positives; a random 80/20 split of the
positives (seed 0); full ranking over all items with the user's training items
excluded; NDCG@10 and Recall@10 (denominator min(|test|, 10)). BLAS runs on one thread;
both models train with the same number of cores (numba / OpenMP threads).

Usage: python benchmarks/bench_p3_implicit_bpr.py [path/to/ml-100k.inter] [--threads N]
"""

from __future__ import annotations

import os

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
os.environ.setdefault("MKL_NUM_THREADS", "1")
os.environ.setdefault("OMP_NUM_THREADS", "1")

import argparse  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import scipy.sparse as sp  # noqa: E402

from recseek.data import Interactions  # noqa: E402
from recseek.models import create  # noqa: E402

DEFAULT = Path(__file__).resolve().parents[2] / "shared" / "data" / "ml-100k" / "ml-100k.inter"


def load_split(path: Path) -> tuple[Interactions, Interactions]:
    df = pd.read_csv(path, sep="\t")
    df.columns = ["user", "item", "rating", "timestamp"]
    df = df[df.rating >= 4].reset_index(drop=True)
    test_mask = np.random.default_rng(0).random(len(df)) < 0.2
    full = Interactions.from_arrays(df.user.values, df.item.values)
    in_test = test_mask[full.order]  # align the record mask with the CSR entries
    return full.subset(~in_test), full.subset(in_test)


def ndcg_recall(top: np.ndarray, test: Interactions, users: np.ndarray, k: int = 10) -> tuple[float, float]:
    """Mean NDCG@k and Recall@k (denominator min(|test|, k)) of ``top`` (len(users), k)."""
    rel = sp.csr_array(test.matrix[users])
    rel.data[:] = 1.0
    rows = np.repeat(np.arange(len(users)), k)
    safe = np.where(top >= 0, top, 0).ravel()
    hits = (np.asarray(rel[rows, safe]).reshape(len(users), k) > 0) & (top >= 0)
    discounts = 1.0 / np.log2(np.arange(2, k + 2))
    n_rel = np.minimum(np.diff(rel.indptr), k)
    idcg = np.cumsum(discounts)[n_rel - 1]
    ndcg = (hits * discounts).sum(axis=1) / idcg
    recall = hits.sum(axis=1) / n_rel
    return float(ndcg.mean()), float(recall.mean())


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("data", nargs="?", default=str(DEFAULT))
    ap.add_argument("--threads", type=int, default=2, help="training threads for both libraries")
    ap.add_argument("--repeats", type=int, default=3, help="fits per library (best time kept)")
    args = ap.parse_args()

    import numba
    from implicit.cpu.bpr import BayesianPersonalizedRanking

    numba.set_num_threads(min(args.threads, numba.config.NUMBA_NUM_THREADS))
    train, test = load_split(Path(args.data))
    users = np.flatnonzero(np.diff(test.matrix.indptr) > 0)
    X = sp.csr_matrix(train.matrix)
    print(f"ML-100K >=4: {train.nnz} train / {test.nnz} test positives, {len(users)} test users, "
          f"{train.n_items} items, threads={args.threads}")

    # warm-up (numba compilation, OpenMP start-up) outside the timings
    create("BPR", factors=64, epochs=1).fit(train)
    BayesianPersonalizedRanking(factors=64, iterations=1, num_threads=args.threads).fit(X, show_progress=False)

    ours_t, theirs_t = [], []
    for _ in range(args.repeats):
        t0 = time.perf_counter()
        ours = create("BPR", factors=64, epochs=100, seed=0).fit(train)
        ours_t.append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        theirs = BayesianPersonalizedRanking(factors=64, iterations=100, num_threads=args.threads, random_state=0)
        theirs.fit(X, show_progress=False)
        theirs_t.append(time.perf_counter() - t0)

    ours_top = ours.recommend(users, 10).ids
    theirs_top, _ = theirs.recommend(users, X[users], N=10, filter_already_liked_items=True)
    o_ndcg, o_rec = ndcg_recall(ours_top, test, users)
    t_ndcg, t_rec = ndcg_recall(np.asarray(theirs_top), test, users)
    o_fit, t_fit = min(ours_t), min(theirs_t)
    print(f"{'model':<34}{'NDCG@10':>9}{'Recall@10':>11}{'fit s':>9}")
    print(f"{'recseek BPR (64 f, 100 epochs)':<34}{o_ndcg:>9.4f}{o_rec:>11.4f}{o_fit:>9.3f}")
    print(f"{'implicit BPR (64 f, 100 it)':<34}{t_ndcg:>9.4f}{t_rec:>11.4f}{t_fit:>9.3f}")
    print(f"ratios recseek/implicit: NDCG {o_ndcg / t_ndcg:.3f}x, Recall {o_rec / t_rec:.3f}x, "
          f"fit time {o_fit / t_fit:.2f}x (target: NDCG >= 1.0x, fit time <= 1.0x)")


if __name__ == "__main__":
    main()
