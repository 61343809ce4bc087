"""JStarCraft RNS rows on its review and check-in data sets, beside the published figures.

Protocol (JStarCraft's test cases ``EFMModelTestCase``, ``HFTModelTestCase``,
``TopicMF*ModelTestCase``, ``TFIDFModelTestCase``, ``RankGeoFMModelTestCase`` with
``data/dc_dense.properties``, ``musical_instruments.properties``, ``Foursquare.properties``):

- data: ``dc_dense.txt`` (user,item,aspect:sentiment ...,score), ``musical_instruments.txt``
  (user,item,word ids,score), FourSquare check-ins ``checkin/train.txt`` + ``test.txt`` pooled
  into one file of check-ins (JStarCraft reads one ``FourSquare.txt``) with
  ``FoursquareLocation.txt`` for the place coordinates;
- split: ``data.separator`` of type ``ratio`` with no ``matchField`` and no ``sortField``: ONE
  global random permutation of all records (seed 0), the first ``floor(0.8 n)`` records to
  train, the rest to test (not per user);
- ranking: top-10 over every item outside the user's training records, users without test
  records skipped, relevance binary; rating: predictions clamped to [1, 5]
  (``recommender.recommender.rating.minimum/maximum``) -- the training range here;
- vocabularies (users, items, words, aspects) cover the whole file, so test-only items are
  candidates of the ranking, as in JStarCraft's data space.

    python benchmarks/bench_jstarcraft_content.py [--data DIR] [--only NAME,...] [--seeds N]
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np

DEFAULT_DATA = Path("/work/shared/data/jstarcraft")
DEFAULT_ANCHORS = Path("/work/shared/anchors")

#: (model, dataset, task, settings): JStarCraft's properties mapped to recseek names. Each row
#: runs on split seed s with model seed s for s = 0 .. seeds-1, and the mean is reported.
ROWS: list[tuple[str, str, str, dict[str, Any]]] = [
    # efmrating-test.properties: 50 iterations, 10 factors, 5 explicit, lambdax/y 1, lambdau/h/v 0.01;
    # missing="ignore" (observed entries only) is JStarCraft's masked form and EFMRating's default
    ("EFMRating", "dc_dense", "rating", {"epochs": 50, "factors": 10, "explicit_factors": 5, "missing": "ignore"}),
    # efmranking-test.properties: 200 iterations, threshold 1 (alpha), featureLimit 250 (top_aspects);
    # JStarCraft's masked updates ("ignore") -- EFMRanking's default is the paper's "zero", the next row
    ("EFMRanking", "dc_dense", "ranking", {"epochs": 200, "factors": 10, "explicit_factors": 5, "missing": "ignore"}),
    ("EFMRanking", "dc_dense", "ranking", {"epochs": 200, "factors": 10, "explicit_factors": 5, "missing": "zero"}),
    # hft-test.properties: 2 iterations (of 5 SGD passes + one Gibbs sweep), lr 0.01, 10 factors,
    # user/item/bias regularization 0.01
    ("HFT", "musical_instruments", "rating", {"epochs": 2, "factors": 10, "learning_rate": 0.01}),
    # topicmf*-test.properties: 10 iterations, 10 topics, lr 0.01, every lambda 0.001, init std 0.01
    ("TopicMFAT", "musical_instruments", "rating", {"epochs": 10, "factors": 10}),
    ("TopicMFMT", "musical_instruments", "rating", {"epochs": 10, "factors": 10}),
    # tfidf-test.properties: CosineSimilarity; recseek's default is the full cosine, JStarCraft's
    # similarity pairs only the words both profiles hold ("common")
    ("TFIDF", "musical_instruments", "ranking", {"similarity": "cosine"}),
    ("TFIDF", "musical_instruments", "ranking", {"similarity": "common"}),
    # rankgeofm-test.properties: 100 factors, lr 0.001, 200 iterations, radius 1, balance 0.2 (alpha),
    # margin 0.3, 300 nearest places (neighbors); init std 0.1 (JStarCraft's default)
    ("RankGeoFM", "FourSquare", "ranking", {"factors": 100, "learning_rate": 0.001, "epochs": 200}),
]


def load_dataset(dataset: str, data_dir: Path = DEFAULT_DATA):
    """The whole data set as one Interactions (with its side data)."""
    from recseek.data import Interactions
    from recseek.data.readers import read_checkins, read_locations, read_reviews

    if dataset == "dc_dense":
        return read_reviews(data_dir / "dc_dense.txt", kind="aspects")
    if dataset == "musical_instruments":
        return read_reviews(data_dir / "musical_instruments.txt", kind="words")
    if dataset == "FourSquare":
        fs = data_dir / "poi" / "FourSquare"
        train, test = read_checkins(fs / "checkin" / "train.txt", fs / "checkin" / "test.txt")
        u1, i1, v1, _ = train.to_coo()
        u2, i2, v2, _ = test.to_coo()
        pooled = Interactions.from_indices(np.concatenate([u1, u2]), np.concatenate([i1, i2]),
                                           np.concatenate([v1, v2]), None, train, "sum")
        locations = read_locations(fs / "FoursquareLocation.txt", train.items, unknown="error")
        return replace(pooled, item_data=locations, meta={"source": str(fs), "format": "checkins"})
    raise ValueError(f"unknown data set {dataset!r}")


def global_split(data, ratio: float = 0.8, seed: int = 0):
    """JStarCraft's ``ratio`` separator without match field: one random permutation of every
    record, the first ``floor(ratio * n)`` to train, the rest to test."""
    n = data.nnz
    perm = np.random.default_rng(seed).permutation(n)
    train_mask = np.zeros(n, dtype=bool)
    train_mask[perm[: int(n * ratio)]] = True
    return data.subset(train_mask), data.subset(~train_mask)


def run(name: str, dataset: str, task: str, params: dict[str, Any], data_dir: Path = DEFAULT_DATA,
        seed: int = 0) -> dict[str, Any]:
    """Fit ``name`` on the ``seed`` split of ``dataset`` (model seed ``seed`` too) and measure it.

    Returns ``{"metrics", "train_ms", "train_cpu_ms", "model"}``; ``train_cpu_ms`` is the
    process CPU time of the fit (a fairer figure than wall time on a shared machine).
    """
    from recseek.evaluation.jstarcraft import RANKING_METRICS, RATING_METRICS
    from recseek.evaluation.protocol import evaluate_ranking, evaluate_rating
    from recseek.models import registry

    data = load_dataset(dataset, data_dir)
    train, test = global_split(data, seed=seed)
    if "seed" in registry.get(name).param_names():
        params = {**params, "seed": seed}
    model = registry.create(name, **params)
    t0, c0 = time.perf_counter(), time.process_time()
    model.fit(train)
    t1, c1 = time.perf_counter(), time.process_time()
    if task == "ranking":
        metrics = evaluate_ranking(model, train, test, k=10, metrics=RANKING_METRICS)
        metrics = {k.split("@")[0]: v for k, v in metrics.items()}
    else:
        metrics = evaluate_rating(model, test, metrics=RATING_METRICS)
    return {"metrics": metrics, "train_ms": (t1 - t0) * 1000, "train_cpu_ms": (c1 - c0) * 1000, "model": model}


def published(name: str, dataset: str, task: str, anchors: Path = DEFAULT_ANCHORS) -> dict[str, float] | None:
    from recseek.evaluation.jstarcraft import read_anchors

    return read_anchors(anchors)[task].get(f"{name.lower()}@{dataset}")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data", type=Path, default=DEFAULT_DATA)
    ap.add_argument("--anchors", type=Path, default=DEFAULT_ANCHORS)
    ap.add_argument("--only", default=None, help="comma-separated model names")
    ap.add_argument("--seeds", type=int, default=1, help="split seeds to average over (0 .. N-1)")
    args = ap.parse_args(argv)
    only = None if args.only is None else {s.strip().lower() for s in args.only.split(",")}
    print(f"# JStarCraft content / place rows, NUMBA_NUM_THREADS={os.environ.get('NUMBA_NUM_THREADS', 'default')}")
    print("| model | data | metric | ours | published | ours/published | train CPU s | published s |")
    print("|---|---|---|---|---|---|---|---|")
    for name, dataset, task, params in ROWS:
        if only is not None and name.lower() not in only:
            continue
        key = "ndcg" if task == "ranking" else "mae"
        vals, times = [], []
        for seed in range(args.seeds):
            out = run(name, dataset, task, params, args.data, seed)
            vals.append(out["metrics"][key])
            times.append(out["train_cpu_ms"] / 1000)
        pub = published(name, dataset, task, args.anchors)
        ours = float(np.mean(vals))
        ref = None if pub is None else pub[key]
        ratio = "—" if ref is None else f"{ours / ref:.3f}"
        pub_s = "—" if pub is None else f"{pub['train_ms'] / 1000:.1f}"
        spread = "" if len(vals) == 1 else f" (±{np.std(vals):.4f})"
        label = name + "".join(f" {k}={v}" for k, v in params.items() if k in ("missing", "similarity"))
        print(f"| {label} | {dataset} | {key} | {ours:.5f}{spread} | {ref if ref is not None else '—'} | {ratio} "
              f"| {np.mean(times):.2f} | {pub_s} |", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
