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
    """Models x metrics (+ compile, fit and predict seconds) from :func:`run_experiment` results."""
    keys: list[str] = []
    for r in results:
        for k in r["metrics"]:
            if k not in keys:
                keys.append(k)
    timing = ["compile_seconds", "fit_seconds", "predict_seconds"]
    headers = ["compile s", "fit s", "predict s"]
    if not any("compile_seconds" in r for r in results):
        timing, headers = timing[1:], headers[1:]
    rows = [[r["model"], *[r["metrics"].get(k, float("nan")) for k in keys], *[r.get(t, float("nan")) for t in timing]]
            for r in results]
    return format_table(["model", *keys, *headers], rows)


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


def _needs_models(fn):
    """Commands that train or load models: check the `models` extra before anything else runs."""
    import functools

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        from ._optional import require

        require("numba")
        require("pandas")
        return fn(*args, **kwargs)

    return wrapper


# ---------------------------------------------------------------- commands
@cli.command("run")
@click.argument("experiment", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--data", "data_path", type=click.Path(path_type=Path), help="Data file or folder (overrides [data] path).")
@click.option("--json", "json_path", type=click.Path(dir_okay=False, path_type=Path), help="Also write the results as JSON.")
@click.option("--progress/--no-progress", default=True, help="Show a progress bar over models.")
@click.option("--report", "report_path", type=click.Path(dir_okay=False, path_type=Path),
              help="Also write a report (.html, .md or .tex) with per-user statistics.")
@click.option("--baseline", default=None, help="Model label the report tests every other model against (default: the first).")
@click.option("--save-dir", "save_dir", type=click.Path(file_okay=False, path_type=Path),
              help="Model store: save every evaluated model to SAVE_DIR/<label>/<next version>/.")
@click.option("--backend", type=click.Choice(["local", "ray"]), default="local", show_default=True,
              help="Where tuning trials run: here, or as Ray tasks (pip install 'recseek[ray]').")
@click.option("--workers", type=click.IntRange(min=1, max=4096), default=None,
              help="CPUs of the local Ray instance (default: all); with --backend ray only.")
@click.option("--ray-address", "ray_address", default=None,
              help="An existing Ray cluster (HOST:PORT or auto) instead of a local instance.")
@_needs_models
def run_cmd(experiment: Path, data_path: Path | None, json_path: Path | None, progress: bool,
            report_path: Path | None, baseline: str | None, save_dir: Path | None, backend: str,
            workers: int | None, ray_address: str | None) -> None:
    """Run the models of EXPERIMENT (a TOML file) and print a comparison table."""
    from .evaluation.experiment import run_experiment

    if report_path is not None or baseline is not None:
        from .evaluation.report_cli import check_report_options

        check_report_options(experiment, report_path, baseline)  # fails before any training
    keep = json_path is not None or report_path is not None
    if backend == "local" and (workers is not None or ray_address is not None):
        raise RecseekError("--workers and --ray-address apply only with --backend ray")
    results = run_experiment(experiment, data_path=data_path, progress=progress, details=keep, save_dir=save_dir,
                             backend=backend, workers=workers, address=ray_address)
    click.echo(f"protocol: {results[0]['protocol']}" if results else "no models")
    click.echo(results_table(results))
    for r in results:
        if r.get("saved"):
            click.echo(f"saved {r['model']} to {r['saved']}")
    if json_path is not None:
        _write_json_atomic(json_path, results)
        click.echo(f"wrote {json_path}")
    if report_path is not None:
        from .evaluation.report_cli import write_run_report

        write_run_report(results, report_path, None, baseline, 0)


def _parse_param(text: str) -> tuple[str, Any]:
    """``key=value`` -> (key, value); the value is read as a TOML value (64, 0.5, true, [1, 2]), else text."""
    key, sep, raw = text.partition("=")
    key = key.strip()
    if not sep or not key:
        raise RecseekError(f"--param {text!r} must look like name=value (e.g. factors=64)")
    try:
        value = tomllib.loads(f"v = {raw.strip()}")["v"]
    except tomllib.TOMLDecodeError:
        value = raw.strip()
    return key, value


@cli.command("train")
@click.option("--model", "model", required=True,
              help="Registry name (see 'recseek models'), or with --config the label of a [[models]] table.")
@click.option("--data", "data", default=None,
              help="Data file or folder, or a named data set (ml-100k, ml-1m, filmtrust); with --config: "
                   "overrides [data].")
@click.option("--format", "fmt", type=click.Choice(["recbole", "movielens", "jstarcraft", "csv", "tsv", "parquet",
                                                   "reviews", "checkins"]),
              default=None, help="Format of --data (default: guessed from the name).")
@click.option("--trust", "trust", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="A trust graph (trustor trustee [value] per line) for social models.")
@click.option("--item-features", "item_features", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Item features (item x feature table, item feature value triples, or .npy/.npz).")
@click.option("--locations", "locations", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Item coordinates (item latitude longitude per line) for place models.")
@click.option("--param", "params", multiple=True, metavar="NAME=VALUE", help="A hyperparameter (repeatable).")
@click.option("--config", "config", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Take the data, its filters and the model's hyperparameters from this experiment TOML.")
@click.option("--min-rating", "min_rating", type=float, default=None, help="Keep only records with value >= this.")
@click.option("--binarize", is_flag=True, default=False, help="Treat every kept record as implicit feedback (1).")
@click.option("--out", "out", required=True, type=click.Path(file_okay=False, path_type=Path),
              help="Model folder STORE/NAME; the model is saved to STORE/NAME/<next version>/.")
@_needs_models
def train_cmd(model: str, data: str | None, fmt: str | None, trust: Path | None, item_features: Path | None,
              locations: Path | None, params: tuple[str, ...], config: Path | None,
              min_rating: float | None, binarize: bool, out: Path) -> None:
    """Fit MODEL on all the data (no split) and save it with the item side data (titles, genres)."""
    from .evaluation.experiment import check_store_name, item_table, save_version, train_on_all

    check_store_name(out.name, "--out folder")
    overrides = dict(_parse_param(p) for p in params)
    if config is not None:
        source: Any = config
        if fmt is not None or min_rating is not None or binarize or trust or item_features or locations:
            raise RecseekError("--format, --min-rating, --binarize and the side-data files come from [data] of "
                               "--config; set them there")
    else:
        if data is None:
            raise RecseekError("--data is required without --config")
        table = _data_table(data, fmt, min_rating, binarize)
        for key, value in (("trust", trust), ("item_features", item_features), ("locations", locations)):
            if value is not None:
                table[key] = str(value.expanduser().resolve())
        source = {"data": table, "models": [{"name": model}]}
        data = None
    fitted, interactions = train_on_all(source, model, data_path=data, params=overrides)
    path = save_version(fitted, out, item_table(interactions))
    click.echo(f"trained {fitted.display_name} on {interactions.nnz:,} interactions of {interactions.n_users:,} "
               f"users and {interactions.n_items:,} items; saved to {path}")


def _data_table(data: str, fmt: str | None, min_rating: float | None, binarize: bool) -> dict[str, Any]:
    """The ``[data]`` table of ``recseek train`` options: a path, else a named data set."""
    from . import datasets

    table: dict[str, Any] = {}
    if Path(data).expanduser().exists() or data not in datasets.names():
        table["path"] = str(Path(data).expanduser().resolve())
    else:
        table["name"] = data
    if fmt is not None:
        table["format"] = fmt
    if min_rating is not None:
        table["min_rating"] = min_rating
    if binarize:
        table["binarize"] = True
    return table


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
@_needs_models
def recommend_cmd(model_dir: Path, user: str, k: int) -> None:
    """Top-k items for one user from a model saved with ``save``."""
    from .models.base import Recommender, check_k

    k = check_k(k, "k")
    model = Recommender.load(model_dir)
    if user not in model.users_:
        raise RecseekError(f"user {user!r} is not in the training data of the model in {model_dir}")
    ranking = model.recommend([model.users_.index(user)], k)
    ids, scores = ranking.row(0)
    side = _saved_item_columns(model_dir)
    rows = []
    for rank, (i, s) in enumerate(zip(ids, scores, strict=True), start=1):
        raw = model.items_.id(int(i))
        rows.append([rank, raw, float(s), *(col.get(str(raw), "") for col in side.values())])
    click.echo(format_table(["rank", "item", "score", *side], rows))


@cli.command("score")
@click.argument("model_dir", type=click.Path(path_type=Path))
@click.option("--users", "users_file", required=True, type=click.Path(dir_okay=False, path_type=Path),
              help="Raw user ids, one per line.")
@click.option("--out", "out", required=True, type=click.Path(dir_okay=False, path_type=Path),
              help="Output file of user,rank,item,score rows (.csv, or .tsv).")
@click.option("-k", "k", type=int, default=10, show_default=True, help="Items per user.")
@click.option("--backend", type=click.Choice(["local", "ray"]), default="local", show_default=True,
              help="Score here, or with a pool of Ray actors holding the model (pip install 'recseek[ray]').")
@click.option("--workers", type=click.IntRange(min=1, max=4096), default=None,
              help="Ray actors (default: all CPUs); with --backend ray only.")
@click.option("--ray-address", "ray_address", default=None,
              help="An existing Ray cluster (HOST:PORT or auto) instead of a local instance.")
@click.option("--skip-unknown", is_flag=True, default=False, help="Leave out user ids the model does not know.")
@click.option("--include-seen", is_flag=True, default=False, help="Also list items the user had in training.")
@_needs_models
def score_cmd(model_dir: Path, users_file: Path, out: Path, k: int, backend: str, workers: int | None,
              ray_address: str | None, skip_unknown: bool, include_seen: bool) -> None:
    """Top-k items for every user of a file, from a model saved with ``save``."""
    from .evaluation.batch import score_file

    if backend == "local" and (workers is not None or ray_address is not None):
        raise RecseekError("--workers and --ray-address apply only with --backend ray")
    info = score_file(model_dir, users_file, out, k, backend=backend, workers=workers, address=ray_address,
                      skip_unknown=skip_unknown, exclude_seen=not include_seen)
    click.echo(f"wrote {info['rows']} rows for {info['users']} users to {out}")


#: Item side-data columns ``recommend`` prints, first found of each group.
_SHOWN_COLUMNS = (("title", "movie_title", "name"), ("genres", "class", "category", "categories"))


def _saved_item_columns(model_dir: Path) -> dict[str, dict[str, str]]:
    """Columns to print beside recommendations: header -> (raw item id -> text).

    Read from the model's verified ``item_data.json``; a legacy ``titles.json`` (raw id
    -> title) beside a model without item data is read when present.
    """
    from .persistence import read_item_data

    frame = read_item_data(model_dir)
    if frame is not None:
        keys = [str(x) for x in frame.index]
        out = {}
        for group in _SHOWN_COLUMNS:
            col = next((c for c in group if c in frame.columns), None)
            if col is not None:
                texts = ["" if v is None else "|".join(map(str, v)) if isinstance(v, list) else str(v)
                         for v in frame[col].tolist()]
                out[group[0]] = dict(zip(keys, texts, strict=True))
        return out
    legacy = Path(model_dir) / "titles.json"
    if not legacy.is_file():
        return {}
    try:
        data = json.loads(legacy.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError):
        raise RecseekError(f"{legacy} is not valid JSON") from None
    if not isinstance(data, dict):
        raise RecseekError(f"{legacy} must be a JSON object of item id -> title")
    return {"title": {str(k): str(v) for k, v in data.items()}}


@cli.command("demo")
@click.option("--data", "data_path", type=click.Path(path_type=Path), help="Folder holding MovieLens-100K.")
@click.option("--user", "user", default=None, help="Raw user id for the example top-10 (default: the first test user).")
@_needs_models
def demo_cmd(data_path: Path | None, user: str | None) -> None:
    """Compare the baselines and the ranking models on MovieLens-100K."""
    _run_demo(data_path, user)


#: Models the demo always shows first.
DEMO_BASELINES = ("MostPopular", "RandomGuess")


#: Families whose ranking models the demo trains (with their defaults, in a few minutes):
#: the neural, probabilistic, federated and side-data families take much longer or need
#: data MovieLens-100K lacks, and are run from experiment files instead.
DEMO_FAMILIES = frozenset({"baseline", "neighborhood", "factorization", "linear", "ranking"})


def _run_demo(data_path: Path | None, user: str | None) -> None:
    import time

    import numpy as np
    from tqdm.auto import tqdm

    from . import datasets
    from .data.split import split
    from .evaluation.experiment import warm_up
    from .evaluation.protocol import evaluate_ranking
    from .models import registry

    evaluation = {"task": "ranking", "k": 10, "metrics": ["ndcg", "recall", "precision", "map", "coverage"]}
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
    names += [c.name for c in registry.available("ranking")
              if c.name not in names and c.conformance_quality and c.family in DEMO_FAMILIES and not c.requires]
    results, skipped, fitted = [], [], {}
    for name in tqdm(names, desc="models", unit="model", file=sys.stderr):
        cls = registry.get(name)
        params = dict(getattr(cls, "demo_params", {}) or {})
        if "verbose" in cls.param_names():
            params["verbose"] = False
        try:
            compile_s = warm_up(name, params, train, evaluation)
            model = registry.create(name, **params)
            t0 = time.perf_counter()
            model.fit(train)
            t1 = time.perf_counter()
            m = evaluate_ranking(model, train, test, k=10, metrics=evaluation["metrics"])
            t2 = time.perf_counter()
        except RecseekError as e:
            skipped.append(f"{name}: {_one_line(e)}")
            continue
        fitted[name] = model
        results.append({"model": name, "metrics": m, "compile_seconds": compile_s, "fit_seconds": t1 - t0,
                        "predict_seconds": t2 - t1})
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
