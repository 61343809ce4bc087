"""recseek's SASRec beside RecBole 1.2.1's SASRec on one ML-100K sequential split.

Protocol (``recseek.evaluation.sequential``): ratings >= 4; per user, the last item by time
(ties in file order) is the test item, the one before it the validation item, the rest
the training sequence (``leave_last_out(validation=True)``). recseek makes the split once
and writes it as RecBole benchmark files (``benchmark_filename``), already augmented the
way RecBole's sequential datasets are:

- ``.train.inter``: one row per training step, ``user, item_id_list = the (at most
  max_length) items before it, item_id = the item``;
- ``.valid.inter``: ``user, the training sequence, the validation item`` (required by
  ``benchmark_filename``; unused, no validation runs);
- ``.test.inter``: ``user, the training sequence followed by the validation item, the
  test item``.

So both libraries train on the same sequences and read the same input at test time (the
training history and the validation item, the latest ``max_length``). recseek reads that
input through ``evaluate_sequential(..., valid=valid)``, which scores each history with
``SASRec.score_histories``. The script checks that RecBole's test rows (users, test items,
input sequences) and catalogue equal recseek's.

Full ranking: RecBole's full-sort evaluation of sequential models does not mask the
user's history (its ``FullSortEvalDataLoader`` gives no history index for them); recseek's
``evaluate_sequential`` leaves the whole history out by default. The like-for-like
comparison is the unmasked one (RecBole's protocol: ``exclude_history=False`` in recseek;
RecBole's own evaluator figure is printed beside the one computed here from its
``full_sort_predict`` scores as a check). A second like-for-like row leaves out the input
window (the last ``max_length`` items each model read), computed the same way for both
from their scores; recseek's default (the whole history left out) is printed for recseek.

Settings (the same for both; RecBole's defaults where recseek has no such setting):
hidden size 64, 2 blocks, 2 heads, feed-forward width 64 (recseek's feed-forward layer is
``factors`` wide), ReLU, dropout 0.5 (RecBole: hidden and attention dropout), max length
50, Adam with learning rate 0.001, cross-entropy over the whole catalogue, the same epochs.
Differences that remain: RecBole's Transformer is post-norm (BERT style, layer norm on the
embeddings), recseek's pre-norm; RecBole's batches are 2048 augmented steps, recseek's are
sequences (``--batch-size``, 36 by default: 27 optimizer steps per epoch, as many as
RecBole's 2048-step batches) with the loss at every step; recseek reads the most recent
``max_length`` steps of each training sequence (the paper's truncation), RecBole slides a
window over every step.

Wall time: the whole fit (RecBole: ``Trainer.fit``; recseek: ``model.fit``), single-threaded
torch in both; CPU seconds beside it, since a shared machine stretches the wall time.
RecBole runs its Transformer over a full ``max_length`` window for every augmented step
(about 2.6 million positions per epoch here, against recseek's 47 thousand: one window per
user, a loss at every step), which cost it about 130 CPU s per epoch on a 2-core machine;
hence the few epochs (``--epochs``). MostPopular's figures on the same protocol are printed
for scale: after 2 epochs both SASRecs are still at them.

Usage::

    NUMBA_NUM_THREADS=1 nice -n 5 python benchmarks/bench_recbole_sasrec.py [--epochs 20]
        [--skip-recbole | --skip-recseek] [--recbole-result FILE]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import tempfile
import textwrap
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
DEFAULT_DATA = HERE.parent.parent / "shared" / "data" / "ml-100k"
RECBOLE_PYTHON = Path("/work/venvs/recbole/bin/python")
DATASET = "ml100k_seq"
MAX_LENGTH = 50

RECBOLE_SETTINGS = {
    "hidden_size": 64, "n_layers": 2, "n_heads": 2, "inner_size": 64, "hidden_act": "relu",
    "hidden_dropout_prob": 0.5, "attn_dropout_prob": 0.5, "MAX_ITEM_LIST_LENGTH": MAX_LENGTH,
    "learning_rate": 0.001, "loss_type": "CE", "train_neg_sample_args": None,
}
RECSEEK_SETTINGS = {"factors": 64, "blocks": 2, "heads": 2, "max_length": MAX_LENGTH, "dropout": 0.5,
                    "learning_rate": 0.001}


def split(data_dir: Path):
    from recseek.data._interactions import Interactions
    from recseek.data.readers import read
    from recseek.evaluation.sequential import leave_last_out

    rated = read(data_dir, format="recbole").filter_min_rating(4)
    # the catalogue is the items with a rating >= 4 (RecBole's, read from the split files);
    # records in file order, so that equal timestamps keep the file order
    u, i, v, t = rated.to_coo()
    first = np.argsort(rated.order, kind="stable")
    full = Interactions.from_arrays(rated.users.ids[u[first]], rated.items.ids[i[first]], v[first], t[first])
    train, valid, test = leave_last_out(full, validation=True)
    return full, train, valid, test


def sequences(part) -> list[np.ndarray]:
    from recseek.models.neural.sasrec import user_sequences

    return user_sequences(part, part.nnz + 1)


def test_rows(train, valid, test) -> list[tuple[str, str, list[str]]]:
    """(user id, test item id, input item ids) of every test user, in user index order."""
    users, items = train.users.ids, train.items.ids
    tr, va, te = sequences(train), sequences(valid), sequences(test)
    out = []
    for u in range(train.n_users):
        if len(te[u]):
            hist = np.concatenate([tr[u], va[u]])[-MAX_LENGTH:]
            out.append((str(users[u]), str(items[te[u][0]]), [str(items[j]) for j in hist]))
    return out


def write_files(folder: Path, train, valid, test) -> None:
    users, items = train.users.ids, train.items.ids
    tr, va = sequences(train), sequences(valid)
    header = "user_id:token\titem_id_list:token_seq\titem_id:token\n"

    def line(u: int, hist: np.ndarray, target: int) -> str:
        return f"{users[u]}\t{' '.join(str(items[j]) for j in hist[-MAX_LENGTH:])}\t{items[target]}\n"

    with open(folder / f"{DATASET}.train.inter", "w") as f:
        f.write(header)
        for u, s in enumerate(tr):
            for t in range(1, len(s)):
                f.write(line(u, s[:t], s[t]))
    with open(folder / f"{DATASET}.valid.inter", "w") as f:
        f.write(header)
        for u, s in enumerate(va):
            if len(s):
                f.write(line(u, tr[u], s[0]))
    with open(folder / f"{DATASET}.test.inter", "w") as f:
        f.write(header)
        for user, item, hist in test_rows(train, valid, test):
            f.write(f"{user}\t{' '.join(hist)}\t{item}\n")


RUNNER = textwrap.dedent("""
    import json, sys, time
    import numpy as np
    import torch
    from recbole.config import Config
    from recbole.data import create_dataset, data_preparation
    from recbole.utils import init_seed, get_model, get_trainer
    cfg, out_path = json.loads(sys.argv[1]), sys.argv[3]
    torch.set_num_threads(1)
    config = Config(model="SASRec", dataset=sys.argv[2], config_dict=cfg)
    init_seed(config["seed"], config["reproducibility"])
    dataset = create_dataset(config)
    train_data, valid_data, test_data = data_preparation(config, dataset)
    model = get_model(config["model"])(config, train_data.dataset).to(config["device"])
    trainer = get_trainer(config["MODEL_TYPE"], config["model"])(config, model)
    t0, c0 = time.perf_counter(), time.process_time()
    trainer.fit(train_data, valid_data=None, saved=False, show_progress=False)
    fit_s, cpu_s = time.perf_counter() - t0, time.process_time() - c0
    result = trainer.evaluate(test_data, load_best_model=False, show_progress=False)
    itok = dataset.field2id_token["item_id"]
    utok = dataset.field2id_token["user_id"]
    rows = []
    model.eval()
    with torch.no_grad():
        for interaction, _, _, _ in test_data:
            scores = model.full_sort_predict(interaction)
            scores[:, 0] = -float("inf")
            target = interaction["item_id"]
            seq, lens = interaction["item_id_list"], interaction["item_length"]
            own = scores.gather(1, target[:, None])
            rank_all = (scores > own).sum(1)
            masked = scores.clone()
            masked.scatter_(1, seq, -float("inf"))
            rank_ex = (masked > own).sum(1)
            for r in range(len(target)):
                rows.append([str(utok[int(interaction["user_id"][r])]), str(itok[int(target[r])]),
                             [str(itok[int(j)]) for j in seq[r, : int(lens[r])]], int(rank_all[r]), int(rank_ex[r])])
    json.dump({"fit_s": fit_s, "cpu_s": cpu_s, "n_items": int(dataset.item_num - 1), "evaluator": {k: float(v) for k, v in result.items()},
               "rows": rows}, open(out_path, "w"))
    print("DONE", fit_s)
""")


def run_recbole(python: Path, epochs: int, folder: Path, out: Path, timeout: int) -> bool:
    cfg = {
        "data_path": str(folder.parent), "epochs": epochs, "seed": 0, "reproducibility": True, "use_gpu": False,
        "device": "cpu", "eval_step": 0, "metrics": ["NDCG", "Hit"], "topk": [10], "valid_metric": "NDCG@10",
        "show_progress": False, "save_dataset": False, "save_dataloaders": False,
        "checkpoint_dir": str(folder.parent / "saved"), "log_wandb": False, "state": "WARNING",
        "load_col": {"inter": ["user_id", "item_id_list", "item_id"]}, "alias_of_item_id": ["item_id_list"],
        "benchmark_filename": ["train", "valid", "test"], "TIME_FIELD": None, "RATING_FIELD": None,
        "eval_args": {"split": None, "order": "TO", "group_by": "user", "mode": "full"},
        **RECBOLE_SETTINGS,
    }
    runner = folder.parent / "run_recbole_sasrec.py"
    runner.write_text(RUNNER)
    try:
        proc = subprocess.run([str(python), str(runner), json.dumps(cfg), DATASET, str(out)], capture_output=True,
                              text=True, timeout=timeout, cwd=folder.parent)
    except subprocess.TimeoutExpired:
        print(f"RecBole SASRec: timed out after {timeout} s")
        return False
    if proc.returncode != 0 or not out.exists():
        print(f"RecBole SASRec failed:\n{proc.stderr[-3000:]}")
        return False
    return True


def rank_metrics(ranks: np.ndarray, k: int = 10) -> tuple[float, float]:
    ranks = np.asarray(ranks)
    hit = ranks < k
    return float(np.mean(np.where(hit, 1.0 / np.log2(ranks + 2.0), 0.0))), float(np.mean(hit))


def run_recseek(epochs: int, batch_size: int, train, valid, test) -> dict:
    from recseek.evaluation.sequential import evaluate_sequential
    from recseek.models.neural.sasrec import SASRec

    model = SASRec(epochs=epochs, batch_size=batch_size, device="cpu", seed=0, **RECSEEK_SETTINGS)
    t0, c0 = time.perf_counter(), time.process_time()
    model.fit(train)
    fit_s, cpu_s = time.perf_counter() - t0, time.process_time() - c0
    out = {"fit_s": fit_s, "cpu_s": cpu_s}
    # the protocol's evaluator: history kept ("all") or the whole history left out ("history")
    for key, exclude in (("all", False), ("history", True)):
        res = evaluate_sequential(model, train, test, k=10, valid=valid, exclude_history=exclude)
        out[key] = (res["ndcg@10"], res["hitrate@10"])
    # ranks of the test item, as computed for RecBole: every item, or the input window left out
    out.update(window_ranks(model.score_histories(input_windows(train, valid, test)), train, valid, test))
    return out


def input_windows(train, valid, test) -> list[np.ndarray]:
    """The input each model reads for each test user: train then valid, the last ``MAX_LENGTH``."""
    users = np.flatnonzero(np.diff(test.matrix.indptr) > 0)
    tr, va = sequences(train), sequences(valid)
    return [np.concatenate([tr[u], va[u]])[-MAX_LENGTH:] for u in users]


def window_ranks(scores: np.ndarray, train, valid, test) -> dict:
    """Rank-based figures of test-user score rows: every item, or the input window left out."""
    import scipy.sparse as sp

    users = np.flatnonzero(np.diff(test.matrix.indptr) > 0)
    windows = input_windows(train, valid, test)
    target = test.matrix.indices[test.matrix.indptr[users]]
    own = scores[np.arange(len(users)), target][:, None]
    rows = np.repeat(np.arange(len(users)), [len(w) for w in windows])
    window = sp.csr_array((np.ones(len(rows)), (rows, np.concatenate(windows))), shape=scores.shape).toarray() > 0
    return {"rank_all": rank_metrics((scores > own).sum(axis=1)),
            "window": rank_metrics(((scores > own) & ~window).sum(axis=1))}


def popularity(train, valid, test) -> dict:
    """MostPopular (training counts) on the same protocol, for scale."""
    from recseek.evaluation.sequential import evaluate_sequential
    from recseek.models import registry

    pop = registry.create("MostPopular").fit(train)
    users = np.flatnonzero(np.diff(test.matrix.indptr) > 0)
    out = window_ranks(pop.score(users), train, valid, test)
    out["all"] = out["rank_all"]
    res = evaluate_sequential(pop, train, test, k=10, valid=valid)
    out["history"] = (res["ndcg@10"], res["hitrate@10"])
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data", type=Path, default=DEFAULT_DATA, help="ml-100k folder (RecBole atomic files)")
    ap.add_argument("--recbole-python", type=Path, default=RECBOLE_PYTHON)
    ap.add_argument("--epochs", type=int, default=20)
    ap.add_argument("--batch-size", type=int, default=36, help="recseek's sequences per Adam step")
    ap.add_argument("--timeout", type=int, default=2400, help="seconds allowed for the RecBole run")
    ap.add_argument("--skip-recbole", action="store_true")
    ap.add_argument("--skip-recseek", action="store_true")
    ap.add_argument("--recbole-result", type=Path, default=None,
                    help="JSON written by an earlier RecBole run (read instead of running RecBole; "
                         "written there when RecBole runs)")
    args = ap.parse_args()
    full, train, valid, test = split(args.data)
    expected = test_rows(train, valid, test)
    print(f"ML-100K ratings >= 4, leave-last-one-out by time: {train.nnz} train / {valid.nnz} valid / "
          f"{test.nnz} test records, {train.n_users} users, {train.n_items} items; {args.epochs} epochs", flush=True)
    theirs = None
    if not args.skip_recbole:
        result = args.recbole_result
        if result is None or not result.exists():
            with tempfile.TemporaryDirectory() as tmp:
                folder = Path(tmp) / DATASET
                folder.mkdir()
                write_files(folder, train, valid, test)
                out = result or Path(tmp) / "recbole.json"
                if run_recbole(args.recbole_python, args.epochs, folder, out, args.timeout):
                    theirs = json.loads(out.read_text())
        else:
            theirs = json.loads(result.read_text())
    if theirs is not None:
        got = sorted((u, i, h) for u, i, h, _, _ in theirs["rows"])
        same = got == sorted(expected) and theirs["n_items"] == train.n_items
        print(f"RecBole's test rows (user, test item, input sequence) and catalogue equal recseek's: {same} "
              f"({len(got)} vs {len(expected)} users, {theirs['n_items']} vs {train.n_items} items)")
        if not same:
            raise SystemExit("the two libraries do not see the same test data; the comparison is void")
        ranks = np.array([[a, b] for _, _, _, a, b in theirs["rows"]])
        theirs["all"] = theirs["rank_all"] = rank_metrics(ranks[:, 0])
        theirs["window"] = rank_metrics(ranks[:, 1])
        ev = theirs["evaluator"]
        print(f"RecBole's own evaluator: NDCG@10 {ev.get('ndcg@10', float('nan')):.4f}, HR@10 "
              f"{ev.get('hit@10', float('nan')):.4f} (history not excluded)")
    mine = None if args.skip_recseek else run_recseek(args.epochs, args.batch_size, train, valid, test)
    if mine is not None:
        print(f"recseek: rank-based figures (as computed for RecBole) {mine['rank_all'][0]:.4f} / "
              f"{mine['rank_all'][1]:.4f} against evaluate_sequential's {mine['all'][0]:.4f} / {mine['all'][1]:.4f}")
    pop = popularity(train, valid, test)
    print("\n| items ranked | recseek NDCG@10 | RecBole NDCG@10 | ratio | recseek HR@10 | RecBole HR@10 | ratio "
          "| MostPopular NDCG@10 / HR@10 |")
    print("|---|---|---|---|---|---|---|---|")
    nan = (float("nan"), float("nan"))
    for key, label in (("all", "every item (RecBole's protocol)"),
                       ("window", f"all but the input window (last {MAX_LENGTH} items)"),
                       ("history", "all but the whole history (recseek's default)")):
        a = mine[key] if mine else nan
        b = theirs.get(key, nan) if theirs else nan
        print(f"| {label} | {a[0]:.4f} | {b[0]:.4f} | {a[0] / b[0]:.3f} | {a[1]:.4f} | {b[1]:.4f} | "
              f"{a[1] / b[1]:.3f} | {pop[key][0]:.4f} / {pop[key][1]:.4f} |")
    fa = mine["fit_s"] if mine else float("nan")
    fb = theirs["fit_s"] if theirs else float("nan")
    ca = mine["cpu_s"] if mine else float("nan")
    cb = theirs.get("cpu_s", float("nan")) if theirs else float("nan")
    print(f"\nfit wall s: recseek {fa:.1f}, RecBole {fb:.1f}, ratio {fa / fb:.3f}; "
          f"fit CPU s: recseek {ca:.1f}, RecBole {cb:.1f}, ratio {ca / cb:.3f}")


if __name__ == "__main__":
    main()
