"""Federated recommenders against MostPopular and a centralised MF on the field's protocol.

Protocol (FedCA's and PFedRec's, made exact by recseek.federated.protocol): users with at
least 10 interactions; leave-one-out (latest item = test, second-latest = validation);
99 negatives per held-out item drawn once per user with a fixed seed, separate for
validation and test; HR@10 / NDCG@10 over the 100 items, full-ranking figures beside
them. The round reported is the one with the best validation HR (never the test).

FilmTrust has no timestamps: "time" is the position at which an item first appears in
the file (what FedCA's loader does), so one item is the test item of about a third of the
users and MostPopular looks strong; a random-order leave-one-out is reported beside it.
Pass FedCA's own copy of the file (``datasets/filmtrust/ratings.dat`` in its repository)
with ``--filmtrust`` to use exactly the authors' data; the default is the JStarCraft copy in
the shared data folder.

Usage::

    NUMBA_NUM_THREADS=1 python benchmarks/bench_federated.py --rounds 20 --seeds 0
    python benchmarks/bench_federated.py --datasets filmtrust --methods FedAvg FedCA --rounds 100 --seeds 0 1 2
    python benchmarks/bench_federated.py --privacy     # accuracy cost of the privacy options (FedAvg)

Measured (20 rounds, mean of seeds 0 1 2, the authors' FilmTrust file; sampled HR / NDCG@10
at the best validation round)::

    data set, order          MostPop      MF (BPR)     FCF          FedAvg       PFedRec      FedCA
    FilmTrust, first seen    0.665/0.510  0.689/0.519  0.671/0.512  0.476/0.289  0.632/0.509  0.211/0.090
    FilmTrust, random        0.902/0.810  0.920/0.811  0.908/0.804  0.862/0.743  0.867/0.773  0.267/0.131
    ML-100K, time            0.404/0.223  0.652/0.378  0.611/0.341  0.332/0.176  0.567/0.315  0.556/0.413

The ordering is not the papers' FedCA >= PFedRec >= FedAvg >= FCF at 20 rounds: FCF's
clients solve their vectors exactly against a shared table every round and its server
takes one Adam step on every client's gradient, so it converges in a few rounds, while the
published methods are still rising (the authors' runs too, see ANCHORS); FedCA aggregates
10 % of the clients per round and keeps 90 % of each client's own table, so after 20
rounds its clients' tables are still mostly local (the authors' local-only run scores
0.209 / 0.102 on FilmTrust, close to FedCA's 0.246 / 0.119), and on FilmTrust's
first-seen split a third of the users share one test item that a local table has not
learnt; FedAvg's first rounds depend on how that item's initial row meets the shared
initial user vector (seed spread above 0.3 in HR). ``bench_federated_authors.py`` checks
FedAvg and FedCA round by round against the authors' code from the same initial model.

Printed: one row per data set x order x method: sampled and full-ranking HR/NDCG@10 at
the best validation round (mean over seeds), that round, and seconds per round; then the
figures measured with the authors' code (see ANCHORS) and the time-per-round ratio.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
import scipy.sparse as sp

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from recseek.data.readers import read_jstarcraft  # noqa: E402
from recseek.federated.protocol import LeaveOneOut, evaluate_scores, leave_one_out  # noqa: E402
from recseek.models import registry  # noqa: E402
from recseek.testing.fixtures import ml100k_records, shared_data_dir  # noqa: E402

#: Test HR@10 / NDCG@10 (1 + 99 sampled) measured here with the authors' FedCA code (FCF
#: backbone, its defaults, its data loader), rounds cut to fit the machine, one seed,
#: taken from the issue that asked for this benchmark; the code picks its round by test HR.
ANCHORS = {
    ("filmtrust", "FedCA"): (0.246, 0.119, 30),
    ("filmtrust", "FedAvg"): (0.539, 0.297, 20),
    ("filmtrust", "local only"): (0.209, 0.102, 30),
    ("ml-100k", "FedCA"): (0.374, 0.244, 10),
    ("filmtrust", "MostPopular"): (0.664, 0.527, 0),
    ("ml-100k", "MostPopular"): (0.391, 0.220, 0),
    ("filmtrust", "centralised MF"): (0.695, 0.547, 0),
    ("ml-100k", "centralised MF"): (0.621, 0.367, 0),
}
#: Seconds per round of the authors' FedCA code on this machine (50 to 145 s measured).
AUTHORS_SECONDS_PER_ROUND = (50.0, 145.0)

#: The published settings of each method (FedCA's defaults for FCF-backbone methods,
#: PFedRec's for PFedRec); ``rounds`` comes from the command line.
SETTINGS = {
    "FedAvg": {"factors": 16, "local_epochs": 10, "learning_rate": 0.01, "negatives": 4, "batch_size": 256},
    "FedCA": {"factors": 16, "local_epochs": 10, "learning_rate": 0.01, "negatives": 4, "batch_size": 256,
              "alpha": 0.3, "beta": 0.3, "aggregated_share": 0.1, "interpolation": 0.9},
    "PFedRec": {"factors": 32, "local_epochs": 1, "learning_rate": 0.1, "eta": 80.0, "negatives": 4},
    "FCF": {"factors": 16, "learning_rate": 0.05, "reg": 1.0, "alpha": 10.0},
}
#: ``--backbone ncf``: FedCA's FedNCF settings (mlp_layers [32, 16, 8, 1], lr_structure 0.01,
#: weight_decay 0.001); PFedRec's head is its score function, stepped like it
NCF = {"FedAvg": {"backbone": "ncf", "tower_layers": 2, "mlp_learning_rate": 0.01, "mlp_reg": 0.001},
       "FedCA": {"backbone": "ncf", "tower_layers": 2, "mlp_learning_rate": 0.01, "mlp_reg": 0.001},
       "PFedRec": {"backbone": "ncf", "tower_layers": 2}}


def load(name: str, filmtrust: str | None):
    from recseek.data import Interactions

    if name == "filmtrust":
        path = Path(filmtrust) if filmtrust else shared_data_dir() / "jstarcraft" / "filmtrust" / "score.txt"
        return read_jstarcraft(path), ["item_first_seen", "random"]
    u, i, v, t = ml100k_records()
    return Interactions.from_arrays(u, i, v.astype(np.float32), t.astype(np.float64)), ["time"]


def never_negative(split: LeaveOneOut) -> sp.csr_array:
    n = split.n_users
    rows = np.concatenate([np.arange(n), np.arange(n)])
    cols = np.concatenate([split.valid_items, split.test_items])
    return sp.csr_array((np.ones(2 * n, np.float32), (rows, cols)), shape=split.train.shape)


def run_federated(method: str, split: LeaveOneOut, rounds: int, seed: int, authors_pool: bool,
                  extra: dict | None = None) -> dict:
    params = {**SETTINGS[method], "rounds": rounds, "seed": seed, **(extra or {})}
    model = registry.create(method, **params)
    fed = model.federation(split.train)
    best = {"valid_hr": -1.0}

    def on_round(f, r):
        nonlocal best
        v = evaluate_scores(f.scores, split, "valid")
        if v.hr > best["valid_hr"]:
            t = evaluate_scores(f.scores, split, "test")
            best = {"valid_hr": v.hr, "round": r + 1, "test": t}
        return {"valid_hr": v.hr}

    t0 = time.perf_counter()
    fed.fit(split.train, on_round=on_round, never_negative=never_negative(split) if authors_pool else None)
    total = time.perf_counter() - t0
    last = evaluate_scores(fed.scores, split, "test")
    train_s = float(np.sum([h["seconds"] for h in fed.history]))
    return {"best": best, "last": last, "seconds_per_round": train_s / rounds, "wall": total,
            "privacy": fed.privacy.report(rounds)}


def baselines(split: LeaveOneOut, seed: int) -> dict:
    pop = np.bincount(split.train.matrix.indices, minlength=split.n_items).astype(np.float32)
    out = {"MostPopular": evaluate_scores(lambda u: np.tile(pop, (len(u), 1)), split, "test")}
    mf = registry.create("BPR", factors=16, epochs=50, learning_rate=0.05, seed=seed).fit(split.train)
    out["centralised MF (BPR, 16 factors)"] = evaluate_scores(mf.score, split, "test")
    return out


def fmt(f) -> str:
    return f"{f.hr:.3f} / {f.ndcg:.3f}   {f.full_hr:.3f} / {f.full_ndcg:.3f}"


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--datasets", nargs="+", default=["filmtrust", "ml-100k"])
    ap.add_argument("--methods", nargs="+", default=["FCF", "FedAvg", "PFedRec", "FedCA"])
    ap.add_argument("--rounds", type=int, default=20)
    ap.add_argument("--seeds", type=int, nargs="+", default=[0])
    ap.add_argument("--filmtrust", help="FilmTrust ratings file (default: the shared JStarCraft copy)")
    ap.add_argument("--honest-negatives", action="store_true",
                    help="draw local negatives outside the training row only (default: outside every "
                         "interaction, validation and test included, as the authors' code does)")
    ap.add_argument("--privacy", action="store_true", help="measure the privacy options on FedAvg instead")
    ap.add_argument("--backbone", choices=["pmf", "ncf"], default="pmf",
                    help="the clients' score function (FCF has only the dot product and is left out with ncf)")
    ap.add_argument("--out", help="write the figures as JSON here")
    args = ap.parse_args(argv)
    rows = []
    print(f"rounds {args.rounds}, seeds {args.seeds}; figures: sampled HR@10 / NDCG@10 (1 + 99)   "
          "full-ranking HR@10 / NDCG@10; federated: test at the best validation round", flush=True)
    for ds in args.datasets:
        data, orders = load(ds, args.filmtrust)
        for order in orders:
            split = leave_one_out(data, order=order, seed=0, min_interactions=10)
            print(f"\n== {ds} ({split.n_users} users x {split.n_items} items, order={order})", flush=True)
            for name, f in baselines(split, 0).items():
                print(f"{name:34s} {fmt(f)}", flush=True)
                rows.append({"data": ds, "order": order, "model": name, "hr": f.hr, "ndcg": f.ndcg,
                             "full_hr": f.full_hr, "full_ndcg": f.full_ndcg})
            variants = [(m, NCF[m] if args.backbone == "ncf" else None) for m in args.methods
                        if args.backbone == "pmf" or m in NCF]
            if args.privacy:
                variants = [("FedAvg", None), ("FedAvg", {"privacy": "laplace", "epsilon": 1.0, "clip": 0.1}),
                            ("FedAvg", {"privacy": "gaussian", "epsilon": 1.0, "delta": 1e-5, "clip": 0.1}),
                            ("FedAvg", {"fake_items": 20})]
            for method, extra in variants:
                runs = [run_federated(method, split, args.rounds, s, not args.honest_negatives, extra)
                        for s in args.seeds]
                mean = {k: float(np.mean([getattr(r["best"]["test"], k) for r in runs]))
                        for k in ("hr", "ndcg", "full_hr", "full_ndcg")}
                spr = float(np.mean([r["seconds_per_round"] for r in runs]))
                label = method if not extra else f"{method} [{runs[0]['privacy']}]"
                if extra and "backbone" in extra:
                    label = f"{method} (NCF)"
                rnd = [r["best"]["round"] for r in runs]
                print(f"{label[:34]:34s} {mean['hr']:.3f} / {mean['ndcg']:.3f}   {mean['full_hr']:.3f} / "
                      f"{mean['full_ndcg']:.3f}   best round {rnd}, {spr:.2f} s/round "
                      f"(authors' code: {AUTHORS_SECONDS_PER_ROUND[0] / spr:.0f}-"
                      f"{AUTHORS_SECONDS_PER_ROUND[1] / spr:.0f}x slower)", flush=True)
                if extra and "backbone" not in extra:
                    print(f"{'':34s} {runs[0]['privacy']}")
                rows.append({"data": ds, "order": order, "model": label, **mean, "best_round": rnd,
                             "seconds_per_round": spr,
                             "last_hr": float(np.mean([r["last"].hr for r in runs]))})
    print("\nMeasured with the authors' FedCA code (test HR@10 / NDCG@10, 1 + 99, its round picked by test HR):")
    for (ds, m), (hr, ndcg, r) in ANCHORS.items():
        print(f"  {ds:10s} {m:16s} {hr:.3f} / {ndcg:.3f}" + (f" after {r} rounds" if r else ""))
    if args.out:
        Path(args.out).write_text(json.dumps(rows, indent=1))


if __name__ == "__main__":
    main()
