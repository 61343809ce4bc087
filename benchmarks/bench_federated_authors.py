"""recseek's FedAvg and FedCA side by side with the authors' FedCA code, same settings.

The authors' code (hongleizhang/FedCA) is run from its folder (``--authors-dir``, with the
Python of a virtual environment that has its requirements, ``--authors-python``), or its
logs from an earlier run are read (``--authors-logs``: one log per method and seed, named
``authors_<method>_<backbone>_s<seed>.log``, the console output of ``train.py``). recseek
runs the same methods with the authors' settings (FedCA's defaults: latent 16, 10 local
epochs, 4 negatives, batch 256, Adam at 0.01, all clients each round; FedCA: alpha = beta
= 0.3, 10 % of the clients aggregated, interpolation 0.9; FedAvg: the authors' flags
``--alpha 0 --beta 0 --agg_clients_ratio 1.0 --interpolation 0``) on the same data and
split: the authors' FilmTrust file, users with at least 10 ratings, leave-one-out with
"time" the position at which an item first appears in the file, 99 negatives per user
shared by validation and test (as the authors' code draws them), and local negatives
drawn outside all of a user's interactions (``Federation.fit(never_negative=...)``, what
the authors' code does). The negatives and the random streams differ between the two
codes, so figures agree in distribution, not draw for draw: compare means over seeds.
By default recseek starts from the authors' initial model of each seed (torch's draws,
mapped to recseek's item indices): on this split one item is the test item of a third of
the users, so in the first rounds HR hinges on how that item's initial row happens to
align with the shared initial user vector, a seed effect larger than any difference
between the codes (``--own-init`` turns this off).

recseek is scored here as the authors' models score: float32 sigmoid probabilities, which
saturate to exactly 1.0 for logits above about 17 (likely with torch's N(0, 1) embeddings
of 16 dimensions) and then tie, the negatives ranking first (the JSON output also holds
the figures from the logits, without those ties, and the full-ranking ones).

Printed, per method: test HR@10 / NDCG@10 (1 + 99) at each round and at the last round,
mean over seeds, both sides, their difference, and seconds per round (the authors' "Time
consuming" of a round: local training and aggregation; recseek's the same part) with the
ratio.

Measured (FilmTrust, the authors' file, PMF backbone; their runs on the shared 2-core
machine under a load of 9-14, so rounds cut to 3; test HR@10 / NDCG@10 over 1 + 99, mean
over the seeds both sides have; recseek from the authors' initial model)::

    method  round  seeds      authors        recseek        difference
    FedCA   1      0 1 2      0.184 / 0.121  0.177 / 0.120  -0.007 / -0.002
    FedCA   2      0 1        0.227 / 0.163  0.231 / 0.166  +0.004 / +0.002
    FedCA   3      0 1        0.230 / 0.164  0.232 / 0.167  +0.002 / +0.003
    FedAvg  1      0          0.048 / 0.020  0.042 / 0.017  -0.006 / -0.003
    FedAvg  2      0          0.057 / 0.024  0.050 / 0.021  -0.007 / -0.003
    FedAvg  3      0          0.071 / 0.031  0.064 / 0.026  -0.007 / -0.004

Seconds per round: the authors' FedCA 800-1130 s and FedAvg 900-2160 s (its 1,002
quadratic programs of 1,002 variables per round dominate); recseek in the same time window
5.1 s (FedAvg) and 6.6 s (FedCA), on an idle machine 0.6 s and 1.1 s: 150-300x faster
under the same load. Longer runs, seed 0, round picked by test HR as the authors' code
does, against the issue's figures from the authors' code: FedAvg after 20 rounds recseek
0.540 / 0.277, authors 0.539 / 0.297; FedCA after 30 rounds recseek 0.270 / 0.122,
authors 0.246 / 0.119 (one seed each; FedCA's aggregated clients are drawn by different
generators in the two codes).

Usage::

    # the authors' runs take 15-25 min per round on a loaded 2-core machine: run them in
    # the background first, e.g.
    #   cd FedCA && python train.py --dataset filmtrust --global_round 3 --seed 0 > authors_fedca_pmf_s0.log 2>&1
    NUMBA_NUM_THREADS=1 python benchmarks/bench_federated_authors.py --authors-logs LOGDIR \\
        --filmtrust FedCA/datasets/filmtrust/ratings.dat --rounds 3 --seeds 0 1
    python benchmarks/bench_federated_authors.py --authors-dir FedCA --authors-python venv/bin/python ...
"""

from __future__ import annotations

import argparse
import json
import re
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import scipy.sparse as sp

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from recseek.data.readers import read_jstarcraft  # noqa: E402
from recseek.federated.protocol import LeaveOneOut, evaluate_scores, leave_one_out  # noqa: E402
from recseek.models import registry  # noqa: E402

#: recseek's settings of each method, the authors' defaults (see the module docstring).
SETTINGS = {
    "FedAvg": {"factors": 16, "local_epochs": 10, "learning_rate": 0.01, "negatives": 4, "batch_size": 256,
               "threshold": 1e-4},
    "FedCA": {"factors": 16, "local_epochs": 10, "learning_rate": 0.01, "negatives": 4, "batch_size": 256,
              "threshold": 1e-4, "alpha": 0.3, "beta": 0.3, "aggregated_share": 0.1, "interpolation": 0.9,
              "principal_k": 4},
}
#: the authors' command-line flags of each method
AUTHOR_FLAGS = {
    "FedAvg": ["--alpha", "0", "--beta", "0", "--agg_clients_ratio", "1.0", "--interpolation", "0"],
    "FedCA": [],
}
#: recseek's backbone settings for the authors' ``--backbone`` (FCF = the dot product)
BACKBONES = {"pmf": ({}, "FCF"),
             "ncf": ({"backbone": "ncf", "tower_layers": 2, "mlp_learning_rate": 0.01, "mlp_reg": 0.001}, "FedNCF")}

_ROUND = re.compile(r"\[Epoch (\d+)/\d+\]\[(Validation|Test)\] HR@10 = ([0-9.]+), NDCG@10 = ([0-9.]+)")
_TIME = re.compile(r"\]\[(?:FCF|FedNCF)\] Time consuming: ([0-9.]+)")


def parse_log(text: str) -> list[dict[str, float]]:
    """Per round of an authors' log: validation and test HR/NDCG@10 and the round's seconds."""
    rounds: dict[int, dict[str, float]] = {}
    times = [float(t) for t in _TIME.findall(text)]
    for r, part, hr, ndcg in _ROUND.findall(text):
        key = "valid" if part == "Validation" else "test"
        rounds.setdefault(int(r), {})[f"{key}_hr"] = float(hr)
        rounds[int(r)][f"{key}_ndcg"] = float(ndcg)
    out = []
    for r in sorted(rounds):
        if "test_hr" in rounds[r] and r - 1 < len(times):
            out.append({"round": r, **rounds[r], "seconds": times[r - 1]})
    return out


def run_authors(folder: Path, python: str, method: str, backbone: str, seed: int, rounds: int, log: Path,
                timeout: int) -> str:
    """Run the authors' ``train.py`` once (FilmTrust) and return its console output."""
    cmd = [python, "train.py", "--dataset", "filmtrust", "--backbone", BACKBONES[backbone][1], "--global_round",
           str(rounds), "--seed", str(seed), *AUTHOR_FLAGS[method]]
    with open(log, "w") as fh:
        subprocess.run(cmd, cwd=folder, stdout=fh, stderr=subprocess.STDOUT, timeout=timeout, check=False)
    return log.read_text()


def never_negative(split: LeaveOneOut) -> sp.csr_array:
    n = split.n_users
    rows = np.concatenate([np.arange(n), np.arange(n)])
    cols = np.concatenate([split.valid_items, split.test_items])
    return sp.csr_array((np.ones(2 * n, np.float32), (rows, cols)), shape=split.train.shape)


def authors_item_order(path: Path) -> dict[int, int]:
    """The authors' item index of each raw item id: the order in which items first appear
    in the file among the users with at least 10 ratings (their loader's reindexing)."""
    raw = np.loadtxt(path, usecols=(0, 1), dtype=np.int64)
    users, counts = np.unique(raw[:, 0], return_counts=True)
    keep = np.isin(raw[:, 0], users[counts >= 10])
    mids = raw[keep, 1]
    _, first = np.unique(mids, return_index=True)
    ordered = mids[np.sort(first)]
    return {int(m): k for k, m in enumerate(ordered)}


def authors_initial_model(seed: int, n_items: int, d: int) -> tuple[np.ndarray, np.ndarray]:
    """The authors' initial item table and shared user vector for ``seed`` (torch's draws in
    the order their ``train.py`` makes them: the model's item and user embeddings, then the
    item table every client starts from; PMF backbone)."""
    import torch

    torch.manual_seed(seed)
    torch.nn.Embedding(n_items, d)
    u0 = torch.nn.Embedding(1, d).weight.detach().numpy()[0].copy()
    V = torch.nn.Embedding(n_items, d).weight.detach().numpy().copy()
    return V, u0


def use_authors_init(fed, seed: int, order: dict[int, int]) -> None:
    """Start ``fed`` from the authors' initial model (rows mapped to recseek's item indices)."""
    plain = fed.init_state

    def init_state(train, never_negative=None):
        plain(train, never_negative)
        V, u0 = authors_initial_model(seed, len(order), fed.local.factors)
        rows = np.array([order.get(int(r), -1) for r in train.items.ids])
        have = rows >= 0
        fed.state.V[have] = V[rows[have]]
        fed.state.U[:] = u0
        if fed.state.tables is not None:
            fed.state.tables[:] = fed.state.V[None]

    fed.init_state = init_state


def run_recseek(method: str, backbone: str, data, rounds: int, seed: int,
                order: dict[int, int] | None = None) -> list[dict[str, float]]:
    """recseek's run: per round validation and test figures and seconds (training and
    aggregation, as the authors' timer); ``order`` given: from the authors' initial model."""
    split = leave_one_out(data, order="item_first_seen", seed=seed, min_interactions=10, shared_negatives=True)
    params = {**SETTINGS[method], **BACKBONES[backbone][0], "rounds": rounds, "seed": seed}
    fed = registry.create(method, **params).federation(split.train)
    if order is not None and backbone == "pmf":
        use_authors_init(fed, seed, order)
    f_now = fed
    out: list[dict[str, float]] = []

    def probabilities(users):
        # what the authors' models output: float32 sigmoids, which saturate to 1.0 for large
        # logits and so tie (their ranking puts the negatives first on ties, as recseek's does)
        z = f_now.scores(users).astype(np.float32)
        with np.errstate(over="ignore"):
            return (np.float32(1.0) / (np.float32(1.0) + np.exp(-z))).astype(np.float32)

    def on_round(f, r):
        nonlocal f_now
        f_now = f
        v = evaluate_scores(probabilities, split, "valid")
        t = evaluate_scores(probabilities, split, "test")
        lt = evaluate_scores(f.scores, split, "test")
        out.append({"round": r + 1, "valid_hr": v.hr, "valid_ndcg": v.ndcg, "test_hr": t.hr, "test_ndcg": t.ndcg,
                    "logit_test_hr": lt.hr, "logit_test_ndcg": lt.ndcg, "full_test_hr": lt.full_hr,
                    "full_test_ndcg": lt.full_ndcg})

    fed.fit(split.train, on_round=on_round, never_negative=never_negative(split))
    for row, h in zip(out, fed.history, strict=True):
        row["seconds"] = float(h["seconds"])
    return out


def _mean(runs: list[list[dict[str, float]]], r: int, key: str) -> float:
    vals = [run[r - 1][key] for run in runs if len(run) >= r]
    return float(np.mean(vals)) if vals else float("nan")


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--filmtrust", required=True, help="the authors' FilmTrust ratings file")
    ap.add_argument("--methods", nargs="+", default=["FedAvg", "FedCA"], choices=sorted(SETTINGS))
    ap.add_argument("--backbone", default="pmf", choices=sorted(BACKBONES))
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    ap.add_argument("--authors-logs", help="folder of the authors' logs (authors_<method>_<backbone>_s<seed>.log)")
    ap.add_argument("--authors-dir", help="the authors' code folder: run it (slow)")
    ap.add_argument("--authors-python", default=sys.executable)
    ap.add_argument("--authors-timeout", type=int, default=6 * 3600)
    ap.add_argument("--own-init", action="store_true",
                    help="start recseek from its own initial draw (default: the authors' initial model for each "
                         "seed, torch's draws mapped to recseek's item indices, so both codes start alike)")
    ap.add_argument("--out", help="write every figure as JSON here")
    args = ap.parse_args(argv)
    data = read_jstarcraft(Path(args.filmtrust))
    order = None if args.own_init else authors_item_order(Path(args.filmtrust))
    report = {}
    print(f"FilmTrust (the authors' file), backbone {args.backbone}, {args.rounds} rounds, seeds {args.seeds}; "
          "test HR@10 / NDCG@10 over 1 + 99 (negatives shared with validation, as the authors draw them)")
    for method in args.methods:
        ours = []
        for s in args.seeds:
            t0 = time.perf_counter()
            ours.append(run_recseek(method, args.backbone, data, args.rounds, s, order))
            print(f"  recseek {method} seed {s}: {time.perf_counter() - t0:.1f} s", flush=True)
        theirs: dict[int, list[dict[str, float]]] = {}
        for s in args.seeds:
            name = f"authors_{method.lower()}_{args.backbone}_s{s}.log"
            text = None
            if args.authors_logs and (Path(args.authors_logs) / name).exists():
                text = (Path(args.authors_logs) / name).read_text()
            elif args.authors_dir:
                text = run_authors(Path(args.authors_dir), args.authors_python, method, args.backbone, s,
                                   args.rounds, Path(args.authors_dir) / name, args.authors_timeout)
            if text:
                parsed = parse_log(text)
                if parsed:
                    theirs[s] = parsed
        a_runs = list(theirs.values())
        print(f"\n== {method}: authors' seeds {sorted(theirs)} (rounds completed: "
              f"{[len(r) for r in a_runs]}), recseek seeds {args.seeds}; per round, both sides over the seeds "
              "whose authors' run reached it")
        print(f"{'round':>5}  {'seeds':>9}  {'authors HR / NDCG':>18}  {'recseek HR / NDCG':>18}  "
              f"{'diff HR / NDCG':>16}  {'s/round authors':>15}  {'recseek':>8}  {'ratio':>6}  "
              f"{'recseek, all seeds':>18}")
        rows = []
        for r in range(1, args.rounds + 1):
            seeds = [s for s in sorted(theirs) if len(theirs[s]) >= r]
            a = [theirs[s] for s in seeds]
            o = [ours[args.seeds.index(s)] for s in seeds]
            ahr, andcg = _mean(a, r, "test_hr"), _mean(a, r, "test_ndcg")
            rhr, rndcg = _mean(o, r, "test_hr"), _mean(o, r, "test_ndcg")
            asec, rsec = _mean(a, r, "seconds"), _mean(ours, r, "seconds")
            print(f"{r:>5}  {str(seeds):>9}  {ahr:8.3f} / {andcg:.3f}  {rhr:8.3f} / {rndcg:.3f}  {rhr - ahr:+7.3f} / "
                  f"{rndcg - andcg:+.3f}  {asec:15.1f}  {rsec:8.2f}  {asec / rsec:5.0f}x  "
                  f"{_mean(ours, r, 'test_hr'):8.3f} / {_mean(ours, r, 'test_ndcg'):.3f}")
            rows.append({"round": r, "seeds": seeds, "authors_hr": ahr, "authors_ndcg": andcg, "recseek_hr": rhr,
                         "recseek_ndcg": rndcg, "authors_seconds": asec, "recseek_seconds": rsec,
                         "recseek_all_hr": _mean(ours, r, "test_hr"), "recseek_all_ndcg": _mean(ours, r, "test_ndcg")})
        for s in args.seeds:
            line = "  ".join(f"{x['test_hr']:.3f}/{x['test_ndcg']:.3f}" for x in ours[args.seeds.index(s)])
            other = "  ".join(f"{x['test_hr']:.3f}/{x['test_ndcg']:.3f}" for x in theirs.get(s, []))
            print(f"  seed {s}: recseek {line}   authors {other or '-'}")
        report[method] = {"rounds": rows, "recseek_runs": ours, "authors_runs": theirs}
    if args.out:
        Path(args.out).write_text(json.dumps(report, indent=1, default=float))


if __name__ == "__main__":
    main()
