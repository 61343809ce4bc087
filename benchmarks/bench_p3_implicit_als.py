"""P3: MovieLens-100K top-N ranking, recseek's ALS family against implicit's ALS.

Protocol (PROTOCOLS.md, P3): ratings >= 4 are positives; a random 80/20 split of the
positives (seed 0); full ranking over all items with the user's train items excluded;
NDCG@10 (binary gains, IDCG over min(|test|, 10)) and Recall@10 (denominator
min(|test|, 10)). BLAS runs on one thread; numba kernels and implicit's own threads use
every core. Each model is fitted once to warm up (numba compilation), then timed over
``--repeats`` fits (median).

    .venv/bin/python benchmarks/bench_p3_implicit_als.py [--data PATH] [--repeats 3]
"""

from __future__ import annotations

import os

for _var in ("OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "OMP_NUM_THREADS", "BLIS_NUM_THREADS"):
    os.environ[_var] = "1"

import argparse  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import scipy.sparse as sp  # noqa: E402

DEFAULT_DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "ml-100k" / "ml-100k.inter"


def load_split(path: Path, seed: int = 0):
    from recseek.data import Interactions

    df = pd.read_csv(path, sep="\t")
    df.columns = ["user", "item", "rating", "timestamp"]
    df = df[df.rating >= 4]
    data = Interactions.from_arrays(df.user.values, df.item.values)
    rng = np.random.default_rng(seed)
    test_mask = rng.random(data.nnz) < 0.2
    return data.subset(~test_mask), data.subset(test_mask)


def ranking_metrics(ids: np.ndarray, test: sp.csr_array, users: np.ndarray, k: int = 10) -> tuple[float, float]:
    """Mean NDCG@k and Recall@k (denominator min(|test|, k)) of top-k item ids per user."""
    t = sp.csr_array(test[users])
    n_rel = np.diff(t.indptr)
    n_items = test.shape[1]
    truth_keys = np.repeat(np.arange(len(users), dtype=np.int64), n_rel) * n_items + t.indices
    keys = np.arange(len(users), dtype=np.int64)[:, None] * n_items + ids
    hit = (np.isin(keys, truth_keys) & (ids >= 0)).astype(np.float64)
    disc = 1.0 / np.log2(np.arange(2, k + 2))
    dcg = hit @ disc
    ideal = np.cumsum(disc)[np.minimum(n_rel, k) - 1]
    denom = np.minimum(n_rel, k)
    return float(np.mean(dcg / ideal)), float(np.mean(hit.sum(axis=1) / denom))


def recseek_runner(name: str, params: dict, train):
    from recseek.models import registry

    registry.create(name, **params)  # fails early for a model missing from this build

    def fit():
        return registry.create(name, **params).fit(train)

    def top10(model, users):
        return model.recommend(users, k=10).ids

    return fit, top10


def implicit_runner(train):
    from implicit.cpu.als import AlternatingLeastSquares

    ui = sp.csr_matrix(train.matrix, dtype=np.float32)

    def fit():
        model = AlternatingLeastSquares(factors=64, regularization=0.05, iterations=15, random_state=0)
        model.fit(ui, show_progress=False)
        return model

    def top10(model, users):
        ids, _ = model.recommend(users, ui[users], N=10, filter_already_liked_items=True)
        return np.asarray(ids, dtype=np.int64)

    return fit, top10


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", type=Path, default=DEFAULT_DATA)
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args()
    train, test = load_split(args.data)
    users = np.flatnonzero(np.diff(test.matrix.indptr) > 0)
    print(f"ML-100K ratings >= 4: {train.nnz} train / {test.nnz} test positives, {len(users)} test users")
    runners = [("implicit ALS (64 f, reg 0.05, 15 it)", implicit_runner(train))]
    for label, name, params in [
        ("recseek WRMF (defaults)", "WRMF", {}),
        ("recseek IALSPlusPlus (defaults)", "IALSPlusPlus", {}),
        ("recseek EALS (defaults)", "EALS", {}),
        ("recseek RankALS (defaults)", "RankALS", {}),
    ]:
        try:
            runners.append((label, recseek_runner(name, params, train)))
        except Exception as e:  # a model missing from this build is reported, not fatal
            print(f"{label}: not run ({e})")
    models = {label: fit() for label, (fit, _) in runners}  # warm-up (numba compilation)
    times: dict[str, list[float]] = {label: [] for label, _ in runners}
    for _ in range(args.repeats):  # interleaved, so that load changes hit every model alike
        for label, (fit, _) in runners:
            t0 = time.perf_counter()
            models[label] = fit()
            times[label].append(time.perf_counter() - t0)
    rows = []
    for label, (_, top10) in runners:
        ndcg, recall = ranking_metrics(top10(models[label], users), test.matrix, users)
        rows.append((label, (ndcg, recall, float(np.median(times[label])))))
    ref_ndcg, _, ref_time = rows[0][1]
    print(f"{'model':40s} {'NDCG@10':>8s} {'Recall@10':>9s} {'fit s':>7s} {'NDCG ratio':>10s} {'time ratio':>10s}")
    for label, (ndcg, recall, secs) in rows:
        print(f"{label:40s} {ndcg:8.4f} {recall:9.4f} {secs:7.3f} {ndcg / ref_ndcg:10.3f} {secs / ref_time:10.2f}")


if __name__ == "__main__":
    main()
