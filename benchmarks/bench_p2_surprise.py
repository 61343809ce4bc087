"""P2: MovieLens-100K rating prediction, recseek against Surprise side by side.

Protocol (PROTOCOLS.md, P2): a random 80/20 split of the ratings (seed 0); both
libraries get exactly the same training and test records. Pairs compared, every model
with its library's default hyperparameters:

- recseek BiasedMF      vs Surprise SVD
- recseek SVDPlusPlus   vs Surprise SVDpp
- recseek KNNBaseline   vs Surprise KNNBaseline (item-based, pearson_baseline)

Printed per model: RMSE, MAE, fit seconds, predict seconds, and per pair the ratios
(recseek / Surprise; below 1 means recseek is smaller = better/faster). recseek models
are fitted once on a small sample first so that loading the compiled numba kernels is
not counted; recseek fit times are the median of ``--repeats`` fits.

    .venv/bin/python benchmarks/bench_p2_surprise.py [--data PATH] [--repeats 3]
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
import pandas as pd

DEFAULT_DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "ml-100k" / "ml-100k.inter"

PAIRS = [
    ("BiasedMF", "SVD"),
    ("SVDPlusPlus", "SVDpp"),
    ("KNNBaseline", "KNNBaseline"),
]


def load_split(path: Path, seed: int = 0) -> tuple[pd.DataFrame, pd.DataFrame]:
    df = pd.read_csv(path, sep="\t")
    df.columns = ["user", "item", "rating", "timestamp"]
    perm = np.random.default_rng(seed).permutation(len(df))
    n_train = int(0.8 * len(df))
    return df.iloc[perm[:n_train]].reset_index(drop=True), df.iloc[perm[n_train:]].reset_index(drop=True)


def errors(pred: np.ndarray, truth: np.ndarray) -> tuple[float, float]:
    err = np.asarray(pred, dtype=np.float64) - truth
    return float(np.sqrt(np.mean(err**2))), float(np.mean(np.abs(err)))


def run_recseek(name: str, train: pd.DataFrame, test: pd.DataFrame, repeats: int) -> dict | None:
    from recseek.data import Interactions
    from recseek.errors import ParameterError
    from recseek.models import registry
    from recseek.testing.fixtures import synthetic

    try:
        registry.get(name)
    except ParameterError:
        print(f"note: recseek model {name} is not registered; its row is skipped")
        return None
    both = pd.concat([train, test])
    full = Interactions.from_arrays(both.user.values, both.item.values, both.rating.values)
    data = Interactions.from_arrays(train.user.values, train.item.values, train.rating.values,
                                    user_vocab=full.users, item_vocab=full.items)
    users = full.users.indices(test.user.values)
    items = full.items.indices(test.item.values)
    registry.create(name).fit(synthetic())  # warm-up: load compiled kernels
    fits = []
    model = None
    for _ in range(repeats):
        model = registry.create(name)
        t = time.perf_counter()
        model.fit(data)
        fits.append(time.perf_counter() - t)
    t = time.perf_counter()
    pred = model.predict(users, items)
    predict_s = time.perf_counter() - t
    rmse, mae = errors(pred, test.rating.values)
    return {"rmse": rmse, "mae": mae, "fit": float(np.median(fits)), "predict": predict_s}


def run_surprise(name: str, train: pd.DataFrame, test: pd.DataFrame) -> dict:
    import surprise

    reader = surprise.Reader(rating_scale=(1, 5))
    trainset = surprise.Dataset.load_from_df(train[["user", "item", "rating"]], reader).build_full_trainset()
    testset = list(zip(test.user.values, test.item.values, test.rating.values.astype(float), strict=True))
    if name == "KNNBaseline":
        algo = surprise.KNNBaseline(sim_options={"name": "pearson_baseline", "user_based": False}, verbose=False)
    else:
        algo = getattr(surprise, name)(random_state=0)
    t = time.perf_counter()
    algo.fit(trainset)
    fit_s = time.perf_counter() - t
    t = time.perf_counter()
    preds = algo.test(testset)
    predict_s = time.perf_counter() - t
    rmse, mae = errors(np.array([p.est for p in preds]), test.rating.values)
    return {"rmse": rmse, "mae": mae, "fit": fit_s, "predict": predict_s}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", type=Path, default=DEFAULT_DATA, help="ml-100k.inter (RecBole atomic format)")
    ap.add_argument("--repeats", type=int, default=3, help="recseek fits per model (median reported)")
    ap.add_argument("--skip-svdpp", action="store_true", help="skip Surprise SVDpp (slow)")
    args = ap.parse_args()
    train, test = load_split(args.data)
    print(f"ML-100K: {len(train)} train / {len(test)} test ratings (random 80/20, seed 0)")
    header = f"{'library':9s} {'model':12s} {'RMSE':>7s} {'MAE':>7s} {'fit s':>8s} {'predict s':>9s}"
    rows = []
    for ours, theirs in PAIRS:
        a = run_recseek(ours, train, test, args.repeats)
        b = None if (args.skip_svdpp and theirs == "SVDpp") else run_surprise(theirs, train, test)
        rows.append((ours, theirs, a, b))
    print(header)
    for ours, theirs, a, b in rows:
        for lib, name, r in (("recseek", ours, a), ("surprise", theirs, b)):
            if r is not None:
                print(f"{lib:9s} {name:12s} {r['rmse']:7.4f} {r['mae']:7.4f} {r['fit']:8.3f} {r['predict']:9.3f}")
    print("\nratios recseek / Surprise (RMSE, MAE: < 1 is more accurate; fit, predict: < 1 is faster)")
    for ours, theirs, a, b in rows:
        if a is None or b is None:
            continue
        print(f"{ours:12s} / {theirs:12s} RMSE {a['rmse'] / b['rmse']:.3f}  MAE {a['mae'] / b['mae']:.3f}  "
              f"fit {a['fit'] / b['fit']:.3f} (x{b['fit'] / a['fit']:.1f} faster)  "
              f"predict {a['predict'] / b['predict']:.3f}")


if __name__ == "__main__":
    main()
