"""Experiments described in TOML: data -> split -> every model -> metrics.

A file has four parts::

    [data]
    name = "ml-100k"          # a named data set (recseek.datasets.load) ...
    # path = "ratings.csv"    # ... or a file/folder, relative to this TOML file
    # format = "csv"          # recbole | movielens | jstarcraft | csv | tsv | parquet
    # options = { sep = ";" } # extra keyword arguments for the reader
    min_rating = 4            # optional: keep only records with value >= 4
    binarize = true           # optional: set every kept value to 1 (implicit feedback)
    # side data, paths relative to this file (see recseek.data.SIDE_DATA):
    # trust = "trust.txt"            # user-user trust graph (trustor trustee [value])
    # item_features = "feats.csv"    # item x feature table, triples or .npy/.npz
    # locations = "places.txt"       # item latitude longitude
    # format = "reviews"             # user,item,review,score files (words, aspects or text)
    # format = "checkins"            # user place [count] check-ins

    [split]
    method = "ratio"          # random | ratio | leave_one_out | temporal | kfold | given_n | cold_items
    ratio = 0.8               # other keys are the method's arguments:
    by = "user"               #   random: ratio, seed
    order = "time"            #   ratio: ratio, by, order ("time" | "random"), seed
    seed = 0                  #   leave_one_out: k, order, seed; temporal: cutoff, ratio
                              #   kfold: k, seed, fold (without fold: every fold, averaged)
                              #   given_n: n, order, seed
                              #   cold_items: ratio, seed, strata, fold (README "Cold start")

    [evaluation]
    task = "ranking"          # ranking | rating
    k = 10                    # list length (ranking)
    metrics = ["ndcg", "recall"]   # ranking: auc auc_full coverage diversity gini hitrate map map_capped
                              #   mrr ndcg novelty precision recall recall_capped;
                              #   rating: mae mpe mse rmse (default: all of the task)
    # sampled = 100           # optional: rank test items against 100 sampled negatives
    # seed = 0                # seed of the sampled negatives
    # clip = [0.5, 4.0]       # rating: clamp predictions (default: training rating range)
    # device = "cuda"         # ranking: top-k of factor models on a torch device (neural extra)

    [[models]]                # one table per model, run in order
    name = "BPR"              # a registry name (see `recseek models`)
    # label = "BPR-64"        # optional name shown in results (default: name)
    # save = "store/bpr"      # optional: save the evaluated model to store/bpr/<next version>/
    factors = 64              # every other key is a hyperparameter of the model
    # reg = { log_uniform = [1e-3, 10] }  # or a search space (see recseek.evaluation.tuning)

    [tuning]                  # optional: how search spaces are searched
    trials = 20               # trials per model and fold (Optuna TPE on a validation split of train)
    # metric = "ndcg@10"; sampler = "tpe" | "random"; seed = 0; validation = 0.2

    [federated]               # optional: settings shared by the federated models (FCF, FedAvg,
    method = ["FedCA"]        #   PFedRec, FedCA), which method adds as models; their own
    rounds = 50               #   [[models]] keys win (see recseek.federated.config)

Only the keys above are accepted. Every mistake (malformed TOML, an unknown key,
model or hyperparameter, a value out of range, a missing file) raises one
:class:`~recseek.errors.RecseekError` sentence that names the file and the key.

:func:`run_experiment` returns one dict per model: ``model`` (label), ``name``,
``params``, ``task``, ``protocol`` (``"full ranking"`` or ``"sampled N negatives"``),
``metrics`` (``{"ndcg@10": ...}``), ``compile_seconds`` (numba compilation, see
below), ``fit_seconds`` and ``predict_seconds`` (the time spent predicting and
computing metrics), and ``saved`` (the folder of the saved model, or None). A tuned
model's ``params`` are the settings chosen on the first fold, and ``tuning`` lists, per
fold, the search (metric, direction, every trial, the chosen settings). With
``details=True`` each also holds ``experiment`` (TOML text, data hash, split, seeds)
and ``details`` (per fold: per-user metric values, metric@k curves, list popularity,
peak memory), which :mod:`recseek.evaluation.report` turns into a report.

Compilation is timed apart from training: before the timed fit, each model is fitted
and evaluated once on a tiny synthetic data set of the same kind (rating values or
implicit feedback, with or without timestamps), which compiles -- or loads from the
on-disk cache -- the numba kernels that the real fit and evaluation use.
``compile_seconds`` is that warm-up (NaN when the settings cannot run on the tiny
data; the compilation is then part of ``fit_seconds``).

A saved model (``save`` in a ``[[models]]`` table, or ``save_dir`` for every model)
is the model the figures describe: trained on the training part of the split. It
carries the data set's item side data (titles, genres) for ``recseek recommend`` and
the server. Versions are folders numbered 1, 2, ... under the model's folder; each
save takes the next number and never replaces an existing version.
"""

from __future__ import annotations

import contextlib
import math
import re
import sys
import time
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from ..errors import DataError, ParameterError, RecseekError

if TYPE_CHECKING:
    import pandas as pd

    from ..data import Interactions
    from ..models.base import Recommender

__all__ = ["Experiment", "item_table", "load_experiment", "run_experiment", "save_version", "train_on_all", "warm_up"]

_DATA_KEYS = {"name", "path", "format", "options", "min_rating", "binarize", "trust", "item_features", "locations"}
#: [data] keys naming a side-data file, with the reader that attaches it.
_SIDE_KEYS = ("trust", "item_features", "locations")
_FORMATS = ("recbole", "movielens", "jstarcraft", "csv", "tsv", "parquet", "reviews", "checkins")
_SPLIT_KEYS = {
    "random": {"ratio", "seed"},
    "ratio": {"ratio", "by", "order", "seed"},
    "leave_one_out": {"k", "order", "seed"},
    "temporal": {"cutoff", "ratio"},
    "kfold": {"k", "seed", "fold"},
    "given_n": {"n", "order", "seed"},
    "cold_items": {"ratio", "seed", "strata", "fold"},
}
_EVAL_KEYS = {"task", "k", "metrics", "sampled", "seed", "clip", "device"}
_SECTIONS = {"data", "split", "evaluation", "models", "tuning", "federated"}


@dataclass
class Experiment:
    """A validated experiment (what :func:`load_experiment` returns)."""

    source: str
    data: dict[str, Any]
    split: dict[str, Any]
    evaluation: dict[str, Any]
    models: list[dict[str, Any]] = field(default_factory=list)
    base_dir: Path = field(default_factory=Path.cwd)
    tuning: dict[str, Any] | None = None


def _err(source: str, msg: str) -> RecseekError:
    return ParameterError(f"{source}: {msg}")


def _is_int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _is_num(v: Any) -> bool:
    return isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v)


def load_experiment(config: str | Path | Mapping[str, Any]) -> Experiment:
    """Parse and validate an experiment (TOML path or already-parsed mapping)."""
    if isinstance(config, Mapping):
        source, raw, base = "<config>", dict(config), Path.cwd()
    else:
        path = Path(config)
        source = str(path)
        if not path.is_file():
            raise DataError(f"experiment file {path} does not exist")
        try:
            raw = tomllib.loads(path.read_text(encoding="utf-8"))
        except tomllib.TOMLDecodeError as e:
            raise ParameterError(f"{source}: invalid TOML: {e}") from None
        except UnicodeDecodeError:
            raise DataError(f"{source}: not a UTF-8 text file") from None
        base = path.resolve().parent
    for key in raw:
        if key not in _SECTIONS:
            raise _err(source, f"unknown section [{key}] (valid: data, split, evaluation, models, tuning, federated)")
    for sec in ("data", "split", "evaluation", "tuning"):
        if sec in raw and not isinstance(raw[sec], dict):
            raise _err(source, f"[{sec}] must be a table")
    data = dict(raw.get("data", {}))
    split = dict(raw.get("split", {}))
    ev = dict(raw.get("evaluation", {}))
    models = raw.get("models")
    if "federated" in raw:  # the federated methods' common settings (recseek.federated.config)
        models = _with_federated(source, raw["federated"], models)
    _check_data(source, data)
    _check_split(source, split)
    _check_eval(source, ev)
    if not isinstance(models, list) or not models or not all(isinstance(m, dict) for m in models):
        raise _err(source, "at least one [[models]] table with a name is required")
    checked = [_check_model(source, i, dict(m), ev["task"]) for i, m in enumerate(models)]
    tuning = None
    if "tuning" in raw or any(m["spaces"] for m in checked):
        from .tuning import check_tuning

        tuning = dict(raw.get("tuning", {}))
        check_tuning(source, tuning, ev)
    return Experiment(source, data, split, ev, checked, base, tuning)


def _check_data(source: str, data: dict[str, Any]) -> None:
    for key in data:
        if key not in _DATA_KEYS:
            raise _err(source, f"unknown key [data] {key} (valid: {', '.join(sorted(_DATA_KEYS))})")
    if "name" in data and not isinstance(data["name"], str):
        raise _err(source, "[data] name must be a string")
    if "path" in data and not isinstance(data["path"], str):
        raise _err(source, "[data] path must be a string")
    if "format" in data and data["format"] not in _FORMATS:
        raise _err(source, f"[data] format must be one of {', '.join(_FORMATS)}, got {data['format']!r}")
    if "options" in data and not isinstance(data["options"], dict):
        raise _err(source, "[data] options must be a table of reader arguments")
    if "min_rating" in data and not _is_num(data["min_rating"]):
        raise _err(source, f"[data] min_rating must be a number, got {data['min_rating']!r}")
    if "binarize" in data and not isinstance(data["binarize"], bool):
        raise _err(source, f"[data] binarize must be true or false, got {data['binarize']!r}")
    for key in _SIDE_KEYS:
        if key in data and not (isinstance(data[key], str) and data[key].strip()):
            raise _err(source, f"[data] {key} must be a file path (a string), got {data[key]!r}")


def _check_split(source: str, split: dict[str, Any]) -> None:
    method = split.setdefault("method", "ratio")
    if method not in _SPLIT_KEYS:
        raise _err(source, f"[split] method must be one of {', '.join(_SPLIT_KEYS)}, got {method!r}")
    valid = _SPLIT_KEYS[method]
    for key, v in split.items():
        if key == "method":
            continue
        if key not in valid:
            raise _err(source, f"unknown key [split] {key} for method {method!r} (valid: {', '.join(sorted(valid))})")
        if key == "ratio" and not (_is_num(v) and 0 < v < 1):
            raise _err(source, f"[split] ratio must be a number between 0 and 1, got {v!r}")
        if key in ("seed", "fold") and not (_is_int(v) and v >= 0):
            raise _err(source, f"[split] {key} must be a non-negative integer, got {v!r}")
        if key in ("k", "n") and not (_is_int(v) and v >= 1):
            raise _err(source, f"[split] {key} must be a positive integer, got {v!r}")
        if key == "order" and v not in ("time", "random"):
            raise _err(source, f"[split] order must be 'time' or 'random', got {v!r}")
    if method == "kfold" and "fold" in split and split["fold"] >= split.get("k", 5):
        raise _err(source, f"[split] fold must be below k={split.get('k', 5)}, got {split['fold']}")


def _check_eval(source: str, ev: dict[str, Any]) -> None:
    from ..metrics import RANKING_METRICS, RATING_METRICS

    for key in ev:
        if key not in _EVAL_KEYS:
            raise _err(source, f"unknown key [evaluation] {key} (valid: {', '.join(sorted(_EVAL_KEYS))})")
    task = ev.setdefault("task", "ranking")
    if task not in ("ranking", "rating"):
        raise _err(source, f"[evaluation] task must be 'ranking' or 'rating', got {task!r}")
    k = ev.setdefault("k", 10)
    if not (_is_int(k) and k >= 1):
        raise _err(source, f"[evaluation] k must be a positive integer, got {k!r}")
    valid = RANKING_METRICS if task == "ranking" else RATING_METRICS
    if "metrics" in ev:
        ms = ev["metrics"]
        if isinstance(ms, str):
            ms = ev["metrics"] = [ms]
        if not isinstance(ms, list) or not ms:
            raise _err(source, "[evaluation] metrics must be a non-empty list of names")
        for m in ms:
            if not isinstance(m, str) or m.strip().lower().split("@", 1)[0] not in valid:
                raise _err(source, f"[evaluation] unknown {task} metric {m!r} (valid: {', '.join(valid)})")
    if "sampled" in ev:
        if task != "ranking":
            raise _err(source, "[evaluation] sampled applies only to the ranking task")
        if not (_is_int(ev["sampled"]) and ev["sampled"] >= 1):
            raise _err(source, f"[evaluation] sampled must be a positive integer, got {ev['sampled']!r}")
    if "device" in ev and not (isinstance(ev["device"], str) and task == "ranking"):
        raise _err(source, f"[evaluation] device must be a device name (ranking only), got {ev['device']!r}")
    if "seed" in ev and not (_is_int(ev["seed"]) and ev["seed"] >= 0):
        raise _err(source, f"[evaluation] seed must be a non-negative integer, got {ev['seed']!r}")
    if "clip" in ev:
        c = ev["clip"]
        if task != "rating":
            raise _err(source, "[evaluation] clip applies only to the rating task")
        if not (isinstance(c, list) and len(c) == 2 and all(_is_num(x) for x in c) and c[0] <= c[1]):
            raise _err(source, f"[evaluation] clip must be [low, high], got {c!r}")


def _with_federated(source: str, table: Any, models: Any) -> list[Any]:
    """``[[models]]`` with the ``[federated]`` settings as defaults of the federated models,
    plus the table's ``method`` entries not already listed."""
    from ..federated.config import federated_settings, settings_for
    from ..models import registry

    methods, settings = federated_settings(source, table)
    out = []
    for m in models if isinstance(models, list) else []:
        if isinstance(m, dict) and isinstance(m.get("name"), str):
            try:
                federated = registry.get(m["name"]).family == "federated"
            except ParameterError:
                federated = False
            if federated:
                m = {**settings_for(m["name"], settings), **m}
        out.append(m)
    listed = {str(m.get("name", "")).lower() for m in out if isinstance(m, dict)}
    out += [{"name": n, **settings_for(n, settings)} for n in methods if n.lower() not in listed]
    return out


def _check_model(source: str, index: int, spec: dict[str, Any], task: str) -> dict[str, Any]:
    from ..models import registry

    where = f"[[models]] #{index + 1}"
    name = spec.pop("name", None)
    if not isinstance(name, str) or not name:
        raise _err(source, f"{where} needs a name")
    label = spec.pop("label", None)
    if label is not None and not isinstance(label, str):
        raise _err(source, f"{where} label must be a string")
    save = spec.pop("save", None)
    if save is not None and not (isinstance(save, str) and save.strip()):
        raise _err(source, f"{where} save must be a folder path (a string), got {save!r}")
    from .tuning import find_spaces

    try:
        cls = registry.get(name)
        fixed, spaces = find_spaces(f"{source}: {where} ({name})", name, spec)
        # every end of every space must be a valid setting
        for pname, s in spaces.items():
            for v in (s.choices if s.kind == "choice" else (s.low, s.high)):
                registry.create(name, **{**fixed, pname: list(v) if isinstance(v, tuple) else v})
        registry.create(name, **fixed)
    except ParameterError as e:
        if str(e).startswith(source):
            raise
        raise _err(source, f"{where} ({name}): {e}") from None
    except RecseekError as e:
        raise _err(source, f"{where} ({name}): {e}") from None
    except TypeError as e:
        raise _err(source, f"{where} ({name}): bad hyperparameters ({e})") from None
    if task == "rating" and cls.task != "rating":
        raise _err(source, f"{where}: {cls.name} is a ranking model and cannot be evaluated on the rating task")
    return {"name": cls.name, "label": label or cls.name, "params": fixed, "spaces": spaces, "save": save}


# ---------------------------------------------------------------- saving
_STORE_NAME = re.compile(r"[A-Za-z0-9_-][A-Za-z0-9._-]*")


def check_store_name(name: str, what: str) -> str:
    """``name`` when usable as a model-store folder name (letters, digits, ``.``, ``_``, ``-``)."""
    if not isinstance(name, str) or not _STORE_NAME.fullmatch(name):
        raise ParameterError(
            f"{what} {name!r} cannot name a model-store folder: use letters, digits, '.', '_' and '-' "
            "(not starting with '.')"
        )
    return name


def item_table(data: Interactions) -> pd.DataFrame | None:
    """The item side data of ``data`` indexed by raw item id, as a saved model carries it.

    Missing values become None; None when the data set has no item side data.
    """
    import pandas as pd

    if data.item_data is None or data.item_data.shape[1] == 0:
        return None
    frame = data.item_data.astype(object)
    frame = frame.where(frame.notna(), None)
    frame.index = pd.Index(data.items.ids.tolist(), name="item")
    return frame


def save_version(model: Recommender, folder: str | Path, item_data: pd.DataFrame | None = None) -> Path:
    """Save ``model`` as the next numbered version ``folder/<n>/`` and return that path.

    The version folder is claimed with an exclusive ``mkdir`` first, so two saves never
    write the same version and an existing version is never replaced.
    """
    folder = Path(folder).expanduser()
    check_store_name(folder.name, "model folder")
    folder.mkdir(parents=True, exist_ok=True)
    numbers = [int(p.name) for p in folder.iterdir() if p.name.isdigit() and p.is_dir()]
    version = max(numbers, default=0) + 1
    while True:
        target = folder / str(version)
        try:
            target.mkdir()
            break
        except FileExistsError:
            version += 1
    try:
        model.save(target, item_data=item_data)
    except BaseException:
        if target.is_dir() and not any(target.iterdir()):
            target.rmdir()
        raise
    return target


def train_on_all(
    config: str | Path | Mapping[str, Any],
    model: str,
    data_path: str | Path | None = None,
    params: Mapping[str, Any] | None = None,
) -> tuple[Recommender, Interactions]:
    """Fit one model of an experiment on all of its data (no split); return it and the data.

    ``model`` is the label or registry name of a ``[[models]]`` table of ``config``;
    ``params`` override that table's hyperparameters; ``data_path`` overrides
    ``[data] path``. The ``[data]`` filters (``min_rating``, ``binarize``) apply. Search
    spaces the overrides leave open are tuned first on a validation split of the data
    (see :mod:`recseek.evaluation.tuning`).
    """
    from .._interface import calling_from
    from ..models import registry
    from .tuning import tune

    exp = load_experiment(config)
    matches = [m for m in exp.models if m["label"] == model] or [
        m for m in exp.models if m["name"].lower() == str(model).lower()]
    if not matches:
        known = ", ".join(dict.fromkeys(m["label"] for m in exp.models))
        raise _err(exp.source, f"no [[models]] table is labelled or named {model!r} (models: {known})")
    spec = matches[0]
    merged = {**spec["params"], **dict(params or {})}
    with calling_from("toml") if exp.source != "<config>" else contextlib.nullcontext():
        data = _load_data(exp, data_path)
    spaces = {k: v for k, v in (spec.get("spaces") or {}).items() if k not in merged}
    if spaces:
        search = tune(spec["name"], merged, spaces, data, exp.split, exp.evaluation, exp.tuning or {},
                      lambda m, tr, te, e: _evaluate(m, tr, te, e, False))
        merged.update(search["best_params"])
    try:
        estimator = registry.create(spec["name"], **merged)
    except RecseekError as e:
        raise ParameterError(f"{spec['name']}: {e}") from None
    estimator.fit(data)
    return estimator, data


# ---------------------------------------------------------------- compilation
def _tiny_split(like: Interactions) -> tuple[Interactions, Interactions]:
    """A small synthetic train/test pair with the kind of values and timestamps of ``like``."""
    from ..data import Interactions
    from ..data.split import split

    rng = np.random.default_rng(0)
    # just above the 2**20 (users x items) score entries where scoring and top-k switch
    # from their serial to their multi-core kernels, so that both kinds get compiled
    n_users, n_items, per_user = 1100, 960, 6
    users = np.repeat(np.arange(n_users), per_user)
    items = np.concatenate([rng.choice(n_items, per_user, replace=False) for _ in range(n_users)])
    kinds = np.unique(like.matrix.data)
    values = rng.choice(kinds if kinds.size else np.ones(1), users.size).astype(np.float64)
    times = np.arange(users.size, dtype=np.float64) if like.timestamps is not None else None
    tiny = Interactions.from_arrays(users, items, values, times, source="warm-up data")
    return split(tiny, "ratio", ratio=0.75, by="user", order="time" if times is not None else "random", seed=0)


def warm_up(name: str, params: Mapping[str, Any], like: Interactions, evaluation: Mapping[str, Any]) -> float:
    """Seconds spent fitting and evaluating model ``name`` once on tiny data like ``like``.

    This compiles (or loads from the cache) the numba kernels of the model's fit,
    scoring and the evaluation, so that the timed run that follows measures training
    alone. NaN when the settings cannot run on the tiny data.
    """
    from ..models import registry

    t0 = time.perf_counter()
    try:
        train, test = _tiny_split(like)
        model = registry.create(name, **params)
        model.fit(train)
        _evaluate(model, train, test, evaluation, details=False)
        model.recommend(np.arange(4), 10)  # a small batch takes the serial scoring kernels
    except RecseekError:
        return math.nan
    return time.perf_counter() - t0


def _evaluate(model: Recommender, train: Interactions, test: Interactions, ev: Mapping[str, Any],
              details: bool) -> Any:
    from ._details import curve_cutoffs
    from .protocol import evaluate_ranking, evaluate_rating

    if ev.get("task", "ranking") == "ranking":
        return evaluate_ranking(model, train, test, k=ev.get("k", 10), metrics=ev.get("metrics"),
                                sampled=ev.get("sampled"), seed=ev.get("seed", 0), device=ev.get("device"),
                                per_user=details, cutoffs=curve_cutoffs(ev.get("k", 10)) if details else None)
    clip = tuple(ev["clip"]) if "clip" in ev else None
    return evaluate_rating(model, test, metrics=ev.get("metrics"), clip=clip)


# ---------------------------------------------------------------- running
def _load_data(exp: Experiment, data_path: str | Path | None):
    spec = exp.data
    path = data_path if data_path is not None else spec.get("path")
    if path is not None and data_path is None:
        p = Path(path).expanduser()
        path = p if p.is_absolute() else exp.base_dir / p
    name = spec.get("name")
    if name is None and path is None:
        raise _err(exp.source, "[data] needs a name or a path (or pass --data)")
    if name is not None:
        from .. import datasets

        data = datasets.load(name, path=None if path is None else str(path))
    else:
        from ..data import readers

        if not Path(path).exists():
            raise DataError(f"{exp.source}: data path {path} does not exist")
        kw = dict(spec.get("options", {}))
        fmt = spec.get("format")
        if fmt == "reviews":
            data = readers.read_reviews(str(path), **kw)
        elif fmt == "checkins":
            data = readers.read_checkins(str(path), **kw)
        elif fmt is not None:
            data = readers.read(str(path), format=fmt, **kw)
        else:
            data = readers.read(str(path), **kw)
    data = attach_side_files(data, spec, exp.base_dir)
    if "min_rating" in spec:
        data = data.filter_min_rating(float(spec["min_rating"]))
        if data.nnz == 0:
            raise DataError(f"{exp.source}: no record has a value >= [data] min_rating {spec['min_rating']}")
    if spec.get("binarize", False):
        data = data.binarize()
    return data


def attach_side_files(data: Interactions, spec: Mapping[str, Any], base: Path) -> Interactions:
    """``data`` with the side-data files a ``[data]`` table names (``trust``,
    ``item_features``, ``locations``; relative paths are relative to ``base``)."""
    from dataclasses import replace

    import pandas as pd

    from ..data import readers

    def where(key: str) -> Path:
        p = Path(spec[key]).expanduser()
        p = p if p.is_absolute() else base / p
        if not p.is_file():
            raise DataError(f"[data] {key} file {p} does not exist")
        return p

    if "trust" in spec:
        data = replace(data, trust=readers.read_trust(where("trust"), data.users))
    if "item_features" in spec:
        data = readers.with_item_features(data, where("item_features"))
    if "locations" in spec:
        coords = readers.read_locations(where("locations"), data.items)
        table = coords if data.item_data is None else pd.concat(
            [data.item_data.drop(columns=[c for c in coords.columns if c in data.item_data.columns]), coords],
            axis=1)
        data = replace(data, item_data=table)
    return data


def _folds(exp: Experiment, data) -> list[tuple[Any, Any]]:
    from ..data.split import split

    kw = {k: v for k, v in exp.split.items() if k != "method"}
    method = exp.split["method"]
    try:
        if method == "cold_items":  # held-out items without training records (evaluation.coldstart)
            from .coldstart import cold_items_folds_count, cold_items_pair

            which = [kw.pop("fold")] if "fold" in kw else range(cold_items_folds_count(kw.get("ratio", 0.2)))
            return [cold_items_pair(data, **kw, fold=f) for f in which]
        if method == "kfold" and "fold" not in kw:
            k = kw.get("k", 5)
            return [split(data, method, **{**kw, "fold": f}) for f in range(k)]
        return [split(data, method, **kw)]
    except RecseekError as e:
        raise _err(exp.source, f"[split] {e}") from None


def protocol_name(evaluation: Mapping[str, Any]) -> str:
    """How metrics were computed, for reports: ``full ranking`` / ``sampled N negatives``."""
    if evaluation.get("task", "ranking") == "rating":
        return "rating prediction"
    s = evaluation.get("sampled")
    return "full ranking" if s is None else f"sampled {s} negatives"


def _save_folders(exp: Experiment, save_dir: str | Path | None, n_folds: int) -> list[Path | None]:
    """Where each model of ``exp`` is saved (None: not saved); checked before any training."""
    out: list[Path | None] = []
    for i, spec in enumerate(exp.models):
        where = f"[[models]] #{i + 1} ({spec['label']})"
        if spec["save"] is not None:
            p = Path(spec["save"]).expanduser()
            folder = p if p.is_absolute() else exp.base_dir / p
        elif save_dir is not None:
            folder = Path(save_dir).expanduser() / spec["label"]
        else:
            out.append(None)
            continue
        try:
            check_store_name(folder.name, "model folder")
        except RecseekError as e:
            hint = "; set label = \"...\" in its [[models]] table" if spec["save"] is None else ""
            raise _err(exp.source, f"{where}: {e}{hint}") from None
        if n_folds > 1:
            raise _err(exp.source, f"{where}: a model can be saved only from one split; with k-fold averaging "
                                   "set [split] fold, or fit on all the data with recseek train")
        out.append(folder)
    labels = [str(f) for f in out if f is not None]
    if len(set(labels)) != len(labels):
        dup = next(x for x in labels if labels.count(x) > 1)
        raise _err(exp.source, f"two models would be saved to {dup}; give them different labels")
    return out


def run_experiment(
    config_or_path: str | Path | Mapping[str, Any],
    data_path: str | Path | None = None,
    progress: bool = True,
    details: bool = False,
    save_dir: str | Path | None = None,
    backend: str = "local",
    workers: int | None = None,
    address: str | None = None,
) -> list[dict[str, Any]]:
    """Run every model of an experiment and return one result dict per model.

    Parameters
    ----------
    config_or_path : path to a TOML file, or the parsed mapping
    data_path : overrides ``[data] path`` (for a named data set: where its files are)
    progress : show a progress bar over models on stderr
    details : keep what a report needs (per-user values, popularity, memory; ranking only)
    save_dir : a model store; every model is saved to ``save_dir/<label>/<next version>/``
        (a ``save`` key of a ``[[models]]`` table takes precedence)
    backend : ``"local"``, or ``"ray"`` to run the trials of each tuning batch as Ray tasks
        (:mod:`recseek.distributed`; ``workers`` CPUs of a local instance, or the cluster at
        ``address``); the results are the same for the same ``[tuning] batch``
    """
    from .._interface import calling_from

    if backend not in ("local", "ray"):
        raise ParameterError(f"backend must be 'local' or 'ray', got {backend!r}")
    exp = load_experiment(config_or_path)
    with calling_from("toml") if exp.source != "<config>" else contextlib.nullcontext():
        data = _load_data(exp, data_path)
        folds = _folds(exp, data)
    with _trial_backend(backend, workers, address, exp, config_or_path, data_path) as make_runner:
        return _run(exp, data, folds, progress, details, save_dir, make_runner)


@contextlib.contextmanager
def _trial_backend(backend: str, workers: int | None, address: str | None, exp: Experiment,
                   config: str | Path | Mapping[str, Any], data_path: str | Path | None):
    """Yields ``make_runner(name, fold) -> runner or None`` for :func:`recseek.evaluation.tuning.tune`."""
    if backend == "local" or not any(m["spaces"] for m in exp.models):
        yield lambda name, fold: None
        return
    from ..distributed import RayTrialRunner, ray_session

    if isinstance(config, Mapping):
        table = {k: dict(v) if isinstance(v, dict) else v for k, v in config.items()}
        if "path" in table.get("data", {}):
            p = Path(table["data"]["path"]).expanduser()
            table["data"]["path"] = str(p if p.is_absolute() else exp.base_dir / p)
        recipe: str | Mapping[str, Any] = table
    else:
        recipe = str(Path(config).resolve())
    dpath = None if data_path is None else str(Path(data_path).expanduser().resolve())
    with ray_session(workers, address) as ray:
        tuning = dict(exp.tuning or {})
        tuning.setdefault("batch", workers or max(1, int(ray.cluster_resources().get("CPU", 1))))
        exp.tuning = tuning
        yield lambda name, fold: RayTrialRunner(ray, recipe, dpath, fold, name, exp.evaluation, tuning)


def _run(exp: Experiment, data, folds, progress: bool, details: bool, save_dir, make_runner) -> list[dict[str, Any]]:
    from tqdm.auto import tqdm

    from ..models import registry
    from ._details import PeakMemory, experiment_record, fold_record, timing_record
    from .tuning import first_point, tune

    ev = exp.evaluation
    task = ev["task"]
    targets = _save_folders(exp, save_dir, len(folds))
    items = item_table(data) if any(t is not None for t in targets) else None
    info = experiment_record(exp, data, folds) if details else None
    results: list[dict[str, Any]] = []
    bar = tqdm(exp.models, desc="models", unit="model", file=sys.stderr, disable=not progress)
    for spec, target in zip(bar, targets, strict=True):
        bar.set_postfix_str(spec["label"])
        sums: dict[str, float] = {}
        fit_s = pred_s = 0.0
        spaces = spec.get("spaces") or {}
        compile_s = warm_up(spec["name"], {**spec["params"], **first_point(spaces)}, folds[0][0], ev)
        records: list[dict[str, Any]] = []
        searches: list[dict[str, Any]] = []
        chosen: dict[str, Any] = dict(spec["params"])
        for f, (train, test) in enumerate(folds):
            params = dict(spec["params"])
            if spaces:
                search = tune(spec["name"], spec["params"], spaces, train, exp.split, ev, exp.tuning or {},
                              lambda m, tr, te, e: _evaluate(m, tr, te, e, False),
                              runner=make_runner(spec["name"], f))
                search["fold"] = f
                searches.append(search)
                params.update(search["best_params"])
                if f == 0:
                    chosen = dict(params)
            model = registry.create(spec["name"], **params)
            fit_mem, pred_mem = PeakMemory(), PeakMemory()
            t0 = time.perf_counter()
            with fit_mem:
                model.fit(train)
            t1 = time.perf_counter()
            with pred_mem:
                m = _evaluate(model, train, test, ev, details)
            t2 = time.perf_counter()
            fit_s += t1 - t0
            pred_s += t2 - t1
            if details:
                timing = timing_record(t1 - t0, t2 - t1, fit_mem, pred_mem)
                if task == "ranking":
                    m, det = m
                    records.append(fold_record(det, train, ev["k"], timing))
                else:
                    records.append(timing)
            for key, v in m.items():
                sums[key] = sums.get(key, 0.0) + v
        n = len(folds)
        results.append({
            "model": spec["label"],
            "name": spec["name"],
            "params": chosen,
            "task": task,
            "protocol": protocol_name(ev) + (f", {n}-fold average" if n > 1 else ""),
            "metrics": {key: v / n for key, v in sums.items()},
            "compile_seconds": compile_s,
            "fit_seconds": fit_s / n,
            "predict_seconds": pred_s / n,
            "saved": None if target is None else str(save_version(model, target, items)),
        })
        if searches:
            results[-1]["tuning"] = searches
        if details:
            results[-1]["experiment"] = info
            results[-1]["details"] = {"folds": records}
    return results
