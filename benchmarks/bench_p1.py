"""P1: the JStarCraft RNS benchmark on FilmTrust, beside the published figures.

Protocol (PROTOCOLS.md, P1): per user, records sorted stably by ``instant``, the first
``floor(0.8 n)`` to train, the rest to test. Ranking: top-10 over every item outside the
user's training data, users without test items skipped. Rating: predictions clamped to
the training range [0.5, 4.0].

Models come from ``benchmarks/p1/*.toml``: each file has ``[[models]]`` tables with a
``name``, hyperparameters, and optionally ``dataset`` (default ``"filmtrust"``; another JStarCraft data set is read from the folder of that name beside the FilmTrust folder, e.g. ``product``, and split per user at random, seed 0, for lack of a time column).
A model is evaluated on the task(s) where JStarCraft publishes a row for it (RandomGuess
on both), else on its own task. For each model the script prints our figure beside the
published one (NDCG@10 for ranking, MAE for rating) with the ratio ours / published, and
the training time beside the published one (ratio published / ours = speed-up; the
published times come from another machine, so read them as orders of magnitude).

    python benchmarks/bench_p1.py [--data DIR] [--markdown docs/p1-jstarcraft.md] [--only NAME,...]
"""

from __future__ import annotations

import argparse
import datetime as _dt
import os
import platform
import sys
from pathlib import Path

from recseek.evaluation.jstarcraft import (
    PUBLISHED_NAME,
    RANKING_METRICS,
    key_metric,
    load_dataset_split,
    load_split,
    published_row,
    published_tasks,
    read_anchors,
    read_model_specs,
    run_model,
)

HERE = Path(__file__).resolve().parent
DEFAULT_DATA = Path("/work/shared/data/jstarcraft/filmtrust")
DEFAULT_ANCHORS = Path("/work/shared/anchors")
def fmt(v: float | None, digits: int = 4) -> str:
    return "—" if v is None else f"{v:.{digits}f}"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data", type=Path, default=DEFAULT_DATA, help="FilmTrust folder (score.txt, trust.txt)")
    ap.add_argument("--anchors", type=Path, default=DEFAULT_ANCHORS, help="folder of jstarcraft_*.csv")
    ap.add_argument("--models-dir", type=Path, default=HERE / "p1", help="folder of model TOML files")
    ap.add_argument("--markdown", type=Path, default=None, help="write the table to this Markdown file")
    ap.add_argument("--only", default=None, help="comma-separated model names to run")
    args = ap.parse_args(argv)

    from recseek.errors import RecseekError
    from recseek.models import registry

    try:
        anchors = read_anchors(args.anchors)
        specs = read_model_specs(args.models_dir)
    except RecseekError as e:
        sys.exit(f"error: {e}")
    only = None if args.only is None else {s.strip().lower() for s in args.only.split(",")}
    data, train, test = load_split(args.data)
    print(f"FilmTrust: {data.n_users} users x {data.n_items} items, {data.nnz} ratings; "
          f"train {train.nnz}, test {test.nnz}")

    rows = []
    splits: dict[str, tuple] = {"filmtrust": (train, test)}
    for fname, spec in specs:
        spec = dict(spec)
        name = spec.pop("name")
        dataset = spec.pop("dataset", "filmtrust")
        if only is not None and name.lower() not in only:
            continue
        if dataset not in splits:
            try:
                splits[dataset] = load_dataset_split(args.data, dataset)[1:]
            except RecseekError as e:
                print(f"{name}: skipped ({e})")
                continue
        d_train, d_test = splits[dataset]
        label = "" if dataset == "filmtrust" else f" ({dataset})"
        try:
            cls = registry.get(name)
        except RecseekError as e:
            rows.append({"model": name, "task": "?", "file": fname, "error": str(e)})
            continue
        for task in published_tasks(cls, anchors, dataset):
            pub = published_row(cls, task, anchors, dataset)
            row = {"model": cls.name + label, "task": task, "file": fname, "params": spec, "published": pub}
            try:
                result = run_model(cls.name, spec, task, d_train, d_test)
                result.pop("model")
                row.update(result)
            except Exception as e:  # a benchmark reports every failure and goes on
                kind = "" if isinstance(e, RecseekError) else f"{type(e).__name__}: "
                row["error"] = kind + " ".join(str(e).split())
            rows.append(row)
            print(line_for(row), flush=True)

    print()
    print(text_table(rows))
    if args.markdown is not None:
        write_markdown(args.markdown, rows, data, train, test, args)
        print(f"\nwrote {args.markdown}")
    return 0


def ratio(a: float | None, b: float | None) -> float | None:
    return None if a is None or b is None or b == 0 else a / b


def line_for(row: dict) -> str:
    if "error" in row:
        return f"{row['model']} [{row['task']}]: failed: {row['error']}"
    km = key_metric(row["task"])
    ours = row["metrics"][km]
    pub = row["published"][km] if row["published"] else None
    speed = ratio(row["published"]["train_ms"], row["train_ms"]) if row["published"] else None
    return (f"{row['model']} [{row['task']}]: {km} {ours:.4f} vs published {fmt(pub)} "
            f"(ratio {fmt(ratio(ours, pub), 3)}); train {row['train_ms']:.0f} ms vs "
            f"{fmt(row['published']['train_ms'] if row['published'] else None, 0)} ms (speed-up {fmt(speed, 1)}x)")


def _table_rows(rows: list[dict]) -> list[list[str]]:
    out = []
    for r in rows:
        if "error" in r:
            out.append([r["model"], r["task"], "failed", "", "", "", "", "", r["error"]])
            continue
        km = key_metric(r["task"])
        ours = r["metrics"][km]
        pub = r["published"][km] if r["published"] else None
        pub_ms = r["published"]["train_ms"] if r["published"] else None
        out.append([r["model"], r["task"], km, fmt(ours), fmt(pub), fmt(ratio(ours, pub), 3),
                    f"{r['train_ms']:.0f}", fmt(pub_ms, 0), fmt(ratio(pub_ms, r["train_ms"]), 1)])
    return out


HEADERS = ["model", "task", "metric", "ours", "published", "ours/published", "train ms", "published ms", "speed-up"]


def text_table(rows: list[dict]) -> str:
    body = _table_rows(rows)
    widths = [max(len(str(x)) for x in col) for col in zip(HEADERS, *body, strict=False)] if body else []
    lines = ["  ".join(h.ljust(w) for h, w in zip(HEADERS, widths, strict=False))]
    for b in body:
        lines.append("  ".join(str(x).ljust(w) for x, w in zip(b, widths, strict=False)))
    return "\n".join(lines)


def write_markdown(path: Path, rows: list[dict], data, train, test, args) -> None:
    lines = [
        "# P1 — JStarCraft RNS benchmark on FilmTrust",
        "",
        "Generated by `python benchmarks/bench_p1.py --markdown docs/p1-jstarcraft.md`; do not edit by hand.",
        "",
        "## Settings",
        "",
        f"- data: FilmTrust (`score.txt` + `trust.txt`): {data.n_users} users (including users who only appear in "
        f"the trust graph), {data.n_items} items, {data.nnz} ratings",
        "- split: per user, records sorted stably by `instant` (ties keep file order); the first "
        f"floor(0.8 n) to train ({train.nnz}), the rest to test ({test.nnz})",
        "- ranking: top-10 over every item outside the user's training data; users without test items skipped; "
        "each user counts once; AUC is JStarCraft's top-N estimate; novelty uses train+test popularity over all users",
        "- rating: predictions clamped to the training rating range; MAE/MSE/RMSE over test ratings; "
        "MPE = share with |error| > 0.01",
        "- published: `jstarcraft_ranking.csv` / `jstarcraft_rating.csv` (JStarCraft RNS README); their times come "
        "from another machine, so the speed-up column is an order of magnitude only",
        f"- machine: {platform.machine()}, {os.cpu_count()} CPUs, Python {platform.python_version()}; "
        f"run {_dt.date.today().isoformat()}",
        "",
        "## Key metric and training time",
        "",
        "| " + " | ".join(HEADERS) + " |",
        "|" + "|".join("---" for _ in HEADERS) + "|",
    ]
    for b in _table_rows(rows):
        lines.append("| " + " | ".join(str(x) for x in b) + " |")
    for task, names in (("ranking", RANKING_METRICS), ("rating", ["mae", "mse", "mpe"])):
        sel = [r for r in rows if r["task"] == task and "error" not in r]
        if not sel:
            continue
        lines += ["", f"## All {task} metrics (ours / published)", "",
                  "| model | " + " | ".join(names) + " |", "|---|" + "|".join("---" for _ in names) + "|"]
        for r in sel:
            cells = []
            for m in names:
                pub = r["published"].get(PUBLISHED_NAME.get(m, m)) if r["published"] else None
                cells.append(f"{r['metrics'][m]:.4f} / {fmt(pub)}")
            lines.append(f"| {r['model']} | " + " | ".join(cells) + " |")
    lines += ["", "## Hyperparameters", ""]
    for r in rows:
        if "error" not in r:
            params = ", ".join(f"{k}={v}" for k, v in r.get("params", {}).items()) or "defaults"
            lines.append(f"- {r['model']} ({r['task']}, `{r['file']}`): {params}")
    # sections written by hand after a "<!-- jstarcraft-... -->" marker (other data sets'
    # protocols) are kept as they are
    kept = ""
    if path.exists():
        old = path.read_text()
        at = old.find("<!-- jstarcraft-")
        if at >= 0:
            kept = old[at:]
    tmp = path.with_name(f".{path.name}.tmp")
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp.write_text("\n".join(lines) + "\n" + ("\n" + kept if kept else ""))
    os.replace(tmp, path)


if __name__ == "__main__":
    sys.exit(main())
