"""The ``recseek`` command line.

``recseek run EXPERIMENT.toml``  run a TOML experiment and print a comparison table
``recseek demo``                 MovieLens-100K: train the baselines and ranking models
``recseek models``               list the models (name, task, family, paper)
``recseek recommend MODEL_DIR``  top-k items of one user from a saved model
``recseek index/search/search-eval``  search commands (search extra)
``recseek serve/retrain``        HTTP serving (serve extra)

Errors caused by input (bad files, unknown names, out-of-range values) print one line
``error: <sentence>`` on stderr and exit with status 2. Heavy modules are imported
inside the commands so that ``recseek --help`` and ``recseek models`` start fast.
"""

from __future__ import annotations

import json
import os
import shutil
import sys
import tempfile
import textwrap
import tomllib
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import click

from ._interface import calling_from
from ._optional import MissingDependencyError, explain
from .errors import RecseekError

#: Sub-commands that live in optional packages: name -> (module, attribute, extra, help).
LAZY_COMMANDS: dict[str, tuple[str, str, str, str]] = {
    "index": ("recseek.search.cli", "index_cmd", "search", "Build a search index from documents."),
    "search": ("recseek.search.cli", "search_cmd", "search", "Search an index."),
    "search-eval": ("recseek.search.cli", "search_eval_cmd", "search", "Evaluate retrieval against relevance judgements."),
    "serve": ("recseek.serving.cli", "serve_cmd", "serve", "Serve models over HTTP."),
    "retrain": ("recseek.serving.cli", "retrain_cmd", "serve", "Retrain a served model on new data."),
    "report": ("recseek.evaluation.report_cli", "report_cmd", "", "Write a report (HTML, Markdown, LaTeX) from run --json results."),
}

_USER_ERRORS = (RecseekError, FileNotFoundError, NotADirectoryError, IsADirectoryError, PermissionError,
                tomllib.TOMLDecodeError)


def _one_line(exc: BaseException) -> str:
    if isinstance(exc, OSError) and getattr(exc, "filename", None) and not isinstance(exc, RecseekError):
        reason = (exc.strerror or type(exc).__name__).lower()
        msg = f"{exc.filename}: {reason}"
    elif isinstance(exc, tomllib.TOMLDecodeError):
        msg = f"invalid TOML: {exc}"
    else:
        msg = str(exc) or type(exc).__name__
    return " ".join(msg.split())


class _Group(click.Group):
    """A click group that loads optional sub-commands on first use and turns input
    errors into one ``error:`` line with exit status 2."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted([*super().list_commands(ctx), *LAZY_COMMANDS])

    def get_command(self, ctx: click.Context, name: str) -> click.Command | None:
        cmd = super().get_command(ctx, name)
        if cmd is not None or name not in LAZY_COMMANDS:
            return cmd
        module, attr, extra, _ = LAZY_COMMANDS[name]
        try:
            import importlib

            return getattr(importlib.import_module(module), attr)
        except (ImportError, AttributeError) as e:
            return _unavailable(name, extra, e)

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        rows = []
        for name in self.list_commands(ctx):
            if name in LAZY_COMMANDS:
                rows.append((name, LAZY_COMMANDS[name][3]))
            else:
                cmd = super().get_command(ctx, name)
                if cmd is not None and not cmd.hidden:
                    rows.append((name, cmd.get_short_help_str(limit=formatter.width - 6 - len(name))))
        if rows:
            with formatter.section("Commands"):
                formatter.write_dl(rows)

    def invoke(self, ctx: click.Context) -> Any:
        try:
            with calling_from("cli"):
                return super().invoke(ctx)
        except _USER_ERRORS as e:
            _fail(ctx, e)
        except ModuleNotFoundError as e:
            # an optional package imported deep inside a command (not at module load)
            missing = explain(e)
            if missing is None:
                raise
            _fail(ctx, missing)


def _fail(ctx: click.Context, exc: BaseException) -> None:
    click.echo(f"error: {_one_line(exc)}", err=True)
    ctx.exit(2)


def _unavailable(name: str, extra: str, exc: Exception) -> click.Command:
    """A stand-in for a command whose module cannot be imported: it fails with one sentence."""
    known = explain(exc) if isinstance(exc, ImportError) else None
    if known is not None:
        reason = f"the '{name}' command is not available: {known}"
    else:
        detail = " ".join(str(exc).split())
        reason = f"the '{name}' command is not available ({detail}); install it with pip install 'recseek[{extra}]'"

    @click.command(name=name, context_settings={"ignore_unknown_options": True, "allow_extra_args": True},
                   add_help_option=False)
    def missing() -> None:
        raise MissingDependencyError(reason)

    return missing


@click.group(cls=_Group, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="recseek", prog_name="recseek")
def cli() -> None:
    """recseek: recommendation and search engine."""


# ---------------------------------------------------------------- tables
def _fmt(v: Any) -> str:
    if isinstance(v, float):
        if v != v:
            return "nan"
        return f"{v:.4f}" if abs(v) < 1000 else f"{v:.1f}"
    return str(v)


def format_table(headers: Sequence[str], rows: Sequence[Sequence[Any]], width: int | None = None) -> str:
    """A plain fixed-width table: numbers right-aligned, text left-aligned.

    With ``width``, a text last column too wide for it is wrapped onto continuation
    lines indented under that column, so that no line is longer than ``width``.
    """
    cells = [[str(h) for h in headers]] + [[_fmt(v) for v in r] for r in rows]
    numeric = [all(isinstance(r[i], int | float) for r in rows) for i in range(len(headers))]
    widths = [max(len(r[i]) for r in cells) for i in range(len(headers))]
    indent = sum(widths[:-1]) + 2 * (len(widths) - 1)
    wrap_at = None
    if width is not None and not numeric[-1] and indent + widths[-1] > width:
        wrap_at = max(width - indent, 20)
        widths[-1] = min(widths[-1], wrap_at)
    lines = []
    for n, r in enumerate(cells):
        last = (textwrap.wrap(r[-1], wrap_at) or [""]) if wrap_at and n > 0 else [r[-1]]
        parts = [c.rjust(w) if num else c.ljust(w) for c, w, num in zip(r[:-1], widths, numeric, strict=False)]
        lines.append("  ".join([*parts, last[0]]).rstrip())
        lines.extend(" " * indent + more for more in last[1:])
        if n == 0:
            lines.append("  ".join("-" * w for w in widths))
    return "\n".join(lines)


def results_table(results: list[dict[str, Any]]) -> str:
    """Models x metrics (+ fit and predict seconds) from :func:`run_experiment` results."""
    keys: list[str] = []
    for r in results:
        for k in r["metrics"]:
            if k not in keys:
                keys.append(k)
    rows = [[r["model"], *[r["metrics"].get(k, float("nan")) for k in keys], r["fit_seconds"], r["predict_seconds"]]
            for r in results]
    return format_table(["model", *keys, "fit s", "predict s"], rows)


def _write_json_atomic(path: Path, obj: Any) -> None:
    parent = path.parent if str(path.parent) else Path(".")
    if not parent.is_dir():
        raise RecseekError(f"cannot write {path}: directory {parent} does not exist")
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            json.dump(obj, f, indent=2)
            f.write("\n")
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


# ---------------------------------------------------------------- commands
@cli.command("run")
@click.argument("experiment", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--data", "data_path", type=click.Path(path_type=Path), help="Data file or folder (overrides [data] path).")
@click.option("--json", "json_path", type=click.Path(dir_okay=False, path_type=Path), help="Also write the results as JSON.")
@click.option("--progress/--no-progress", default=True, help="Show a progress bar over models.")
@click.option("--report", "report_path", type=click.Path(dir_okay=False, path_type=Path),
              help="Also write a report (.html, .md or .tex) with per-user statistics.")
@click.option("--baseline", default=None, help="Model label the report tests every other model against (default: the first).")
def run_cmd(experiment: Path, data_path: Path | None, json_path: Path | None, progress: bool,
            report_path: Path | None, baseline: str | None) -> None:
    """Run the models of EXPERIMENT (a TOML file) and print a comparison table."""
    from .evaluation.experiment import run_experiment

    if report_path is not None or baseline is not None:
        from .evaluation.report_cli import check_report_options

        check_report_options(experiment, report_path, baseline)  # fails before any training
    keep = json_path is not None or report_path is not None
    results = run_experiment(experiment, data_path=data_path, progress=progress, details=keep)
    click.echo(f"protocol: {results[0]['protocol']}" if results else "no models")
    click.echo(results_table(results))
    if json_path is not None:
        _write_json_atomic(json_path, results)
        click.echo(f"wrote {json_path}")
    if report_path is not None:
        from .evaluation.report_cli import write_run_report

        write_run_report(results, report_path, None, baseline, 0)


@cli.command("models")
@click.option("--task", type=click.Choice(["ranking", "rating"]), default=None, help="Only models of this task.")
@click.option("--width", type=click.IntRange(min=40), default=None,
              help="Line width (default: the terminal's, or 100 when not a terminal).")
def models_cmd(task: str | None, width: int | None) -> None:
    """List the available models."""
    from ._catalogue import entries

    if width is None:
        width = shutil.get_terminal_size((100, 24)).columns
    rows = [[e.name, e.task, e.family, e.paper] for e in entries(task)]
    click.echo(format_table(["name", "task", "family", "paper"], rows, width=width))


@cli.command("recommend")
@click.argument("model_dir", type=click.Path(path_type=Path))
@click.option("--user", "user", required=True, help="Raw user id (as in the training data).")
@click.option("-k", "k", type=int, default=10, show_default=True, help="Number of items.")
def recommend_cmd(model_dir: Path, user: str, k: int) -> None:
    """Top-k items for one user from a model saved with ``save``."""
    from .models.base import Recommender, check_k

    k = check_k(k, "k")
    model = Recommender.load(model_dir)
    if user not in model.users_:
        raise RecseekError(f"user {user!r} is not in the training data of the model in {model_dir}")
    ranking = model.recommend([model.users_.index(user)], k)
    ids, scores = ranking.row(0)
    titles = _saved_titles(model_dir)
    rows = []
    for rank, (i, s) in enumerate(zip(ids, scores, strict=True), start=1):
        raw = model.items_.id(int(i))
        row = [rank, raw, float(s)]
        if titles is not None:
            row.append(titles.get(str(raw), ""))
        rows.append(row)
    headers = ["rank", "item", "score"] + (["title"] if titles is not None else [])
    click.echo(format_table(headers, rows))


def _saved_titles(model_dir: Path) -> dict[str, str] | None:
    """Item titles stored beside a saved model (``titles.json``: raw item id -> title)."""
    p = Path(model_dir) / "titles.json"
    if not p.is_file():
        return None
    try:
        data = json.loads(p.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError):
        raise RecseekError(f"{p} is not valid JSON") from None
    return {str(k): str(v) for k, v in data.items()} if isinstance(data, dict) else None


@cli.command("demo")
@click.option("--data", "data_path", type=click.Path(path_type=Path), help="Folder holding MovieLens-100K.")
@click.option("--user", "user", default=None, help="Raw user id for the example top-10 (default: the first test user).")
def demo_cmd(data_path: Path | None, user: str | None) -> None:
    """Compare the baselines and the ranking models on MovieLens-100K."""
    _run_demo(data_path, user)


#: Models the demo always shows first.
DEMO_BASELINES = ("MostPopular", "RandomGuess")


def _run_demo(data_path: Path | None, user: str | None) -> None:
    import time

    import numpy as np
    from tqdm.auto import tqdm

    from . import datasets
    from .data.split import split
    from .evaluation.protocol import evaluate_ranking
    from .models import registry

    data = datasets.load("ml-100k", path=None if data_path is None else str(data_path))
    positives = data.filter_min_rating(4).binarize()
    if user is not None and user not in positives.users:
        # checked before any model is trained
        where = "MovieLens-100K" if user not in data.users else "MovieLens-100K's users with a rating >= 4"
        raise RecseekError(f"--user {user!r} is not in {where}")
    train, test = split(positives, "ratio", ratio=0.8, by="user", order="time")
    click.echo(
        f"MovieLens-100K: {positives.nnz} ratings >= 4 of {data.n_users} users on {data.n_items} items; "
        f"per-user 80/20 split by time; full ranking, k=10"
    )
    names = list(DEMO_BASELINES)
    names += [c.name for c in registry.available("ranking") if c.name not in names and c.conformance_quality]
    results, skipped, fitted = [], [], {}
    for name in tqdm(names, desc="models", unit="model", file=sys.stderr):
        cls = registry.get(name)
        params = dict(getattr(cls, "demo_params", {}) or {})
        if "verbose" in cls.param_names():
            params["verbose"] = False
        try:
            model = registry.create(name, **params)
            t0 = time.perf_counter()
            model.fit(train)
            t1 = time.perf_counter()
            m = evaluate_ranking(model, train, test, k=10, metrics=["ndcg", "recall", "precision", "map", "coverage"])
            t2 = time.perf_counter()
        except RecseekError as e:
            skipped.append(f"{name}: {_one_line(e)}")
            continue
        fitted[name] = model
        results.append({"model": name, "metrics": m, "fit_seconds": t1 - t0, "predict_seconds": t2 - t1})
    click.echo(results_table(results))
    for line in skipped:
        click.echo(f"skipped {line}")
    if not results:
        return
    best = max(results, key=lambda r: r["metrics"]["ndcg@10"])
    model = fitted[best["model"]]
    if user is None:
        u = int(np.flatnonzero(np.diff(test.matrix.indptr) > 0)[0])
    else:
        u = train.users.index(user)
    ids, scores = model.recommend([u], 10).row(0)
    titles = None
    if train.item_data is not None and "title" in train.item_data.columns:
        titles = train.item_data["title"].to_numpy()
    relevant = set(test.items_of(u).tolist())
    click.echo(f"\ntop-10 of {best['model']} (best NDCG@10) for user {train.users.id(u)}; * = in the user's test set")
    rows = []
    for rank, (i, s) in enumerate(zip(ids, scores, strict=True), start=1):
        title = "" if titles is None else str(titles[int(i)])
        rows.append([rank, ("* " if int(i) in relevant else "  ") + str(train.items.id(int(i))), title, float(s)])
    click.echo(format_table(["rank", "item", "title", "score"], rows))


def main(argv: Sequence[str] | None = None) -> None:
    """Entry point of the ``recseek`` script."""
    cli.main(args=None if argv is None else list(argv), prog_name="recseek")


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
