"""Hyperparameter search spaces in experiments: parsing, leakage-free validation, the best
trial chosen by the validation metric, reproducibility from the seed, and the report panel."""

from __future__ import annotations

import math
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from recseek.errors import ParameterError, RecseekError
from recseek.evaluation.experiment import _folds, _load_data, load_experiment, run_experiment, train_on_all
from recseek.evaluation.tuning import Space, best_so_far, find_spaces
from recseek.models import registry
from recseek.models.linear.ease import EASE
from recseek.testing.fixtures import ml100k_sample


@pytest.fixture(scope="module", autouse=True)
def small_ml100k(tmp_path_factory: pytest.TempPathFactory) -> None:
    """A CSV of the first 300 MovieLens-100K users' ratings of its 300 most rated items (fast to fit)."""
    global DATA
    data = ml100k_sample(300)
    u, i, v, t = data.to_coo()
    top = np.argsort(-np.bincount(i, minlength=data.n_items), kind="stable")[:300]
    keep = np.isin(i, top)
    frame = pd.DataFrame({"user": data.users.ids[u[keep]], "item": data.items.ids[i[keep]],
                          "rating": v[keep], "timestamp": t[keep]})
    DATA = tmp_path_factory.mktemp("tuning") / "ratings.csv"
    frame.to_csv(DATA, index=False)


DATA: Path | None = None


def _config(**tuning: Any) -> dict[str, Any]:
    return {
        "data": {"path": str(DATA), "format": "csv", "min_rating": 4, "binarize": True},
        "split": {"method": "ratio", "ratio": 0.8, "order": "random", "seed": 0},
        "evaluation": {"task": "ranking", "k": 10, "metrics": ["ndcg", "recall"]},
        "models": [{"name": "EASE", "reg": {"log_uniform": [0.1, 100000.0]}}],
        "tuning": {"trials": 6, "seed": 3, **tuning},
    }


FIT_LOG: list[set[tuple[int, int]]] = []


class SpyEASE(EASE):
    """EASE that records the (user, item) pairs of every training set it is fitted on."""

    name = "SpyEASE"

    def _fit(self, train):
        u, i, _, _ = train.to_coo()
        FIT_LOG.append(set(zip(train.users.ids[u].tolist(), train.items.ids[i].tolist(), strict=True)))
        super()._fit(train)


@contextmanager
def spy_registered():
    registry.available()
    registry.register(SpyEASE)
    try:
        yield
    finally:
        registry._MODELS.pop("spyease", None)


def test_spaces_are_parsed_and_checked() -> None:
    fixed, spaces = find_spaces("exp", "BPR", {"factors": [8, 16], "reg": {"log_uniform": [1e-3, 1.0]},
                                               "epochs": {"int": [2, 5]}, "learning_rate": 0.05})
    assert fixed == {"learning_rate": 0.05}
    assert spaces == {"factors": Space("choice", choices=(8, 16)), "reg": Space("log_uniform", 1e-3, 1.0),
                      "epochs": Space("int", 2, 5)}
    bad = [
        ({"reg": {"log_uniform": [0.0, 1.0]}}, "positive low bound"),
        ({"reg": {"uniform": [2.0, 1.0]}}, r"\[low, high\] with low < high"),
        ({"epochs": {"int": [1.5, 4]}}, "bounds must be integers"),
        ({"reg": {"normal": [0, 1]}}, "one search space"),
        ({"factors": []}, "lists no value"),
    ]
    for params, message in bad:
        with pytest.raises(ParameterError, match=message):
            find_spaces("exp", "BPR", params)


def test_every_end_of_a_space_is_validated() -> None:
    cfg = _config()
    cfg["models"] = [{"name": "BPR", "factors": [0, 8]}]
    with pytest.raises(RecseekError, match=r"\[\[models\]\] #1 \(BPR\).*factors"):
        load_experiment(cfg)
    cfg = _config(sampler="grid")
    with pytest.raises(ParameterError, match=r"\[tuning\] sampler must be 'tpe' or 'random'"):
        load_experiment(cfg)
    cfg = _config(trials=0)
    with pytest.raises(ParameterError, match=r"\[tuning\] trials"):
        load_experiment(cfg)
    cfg = _config(metric="rmse")
    with pytest.raises(ParameterError, match=r"unknown ranking metric 'rmse'"):
        load_experiment(cfg)


def test_tuning_never_sees_the_test_part() -> None:
    cfg = _config()
    cfg["models"] = [{"name": "SpyEASE", "reg": {"log_uniform": [1.0, 10000.0]}}]
    FIT_LOG.clear()
    with spy_registered():
        exp = load_experiment(cfg)
        data = _load_data(exp, None)
        (train, test), = _folds(exp, data)
        results = run_experiment(cfg, progress=False)

    def pairs(x):
        u, i, _, _ = x.to_coo()
        return set(zip(x.users.ids[u].tolist(), x.items.ids[i].tolist(), strict=True))

    train_pairs, test_pairs = pairs(train), pairs(test)
    trials = results[0]["tuning"][0]["trials"]
    # the warm-up fit on tiny synthetic data, one fit per trial, then the final fit on all of train
    assert len(FIT_LOG) == 1 + len(trials) + 1
    for seen in FIT_LOG[1:-1]:
        assert seen < train_pairs and not seen & test_pairs
        assert len(seen) < 0.9 * len(train_pairs)  # the validation part was held out
    assert FIT_LOG[-1] == train_pairs


def test_the_best_trial_is_chosen_and_refitted() -> None:
    results = run_experiment(_config(), progress=False)
    (search,) = results[0]["tuning"]
    values = np.array([t["value"] for t in search["trials"]])
    assert search["direction"] == "maximize" and search["metric"] == "ndcg@10"
    assert search["best_value"] == values.max()
    best = search["trials"][int(values.argmax())]["params"]
    assert results[0]["params"] == best == search["best_params"]
    # EASE's NDCG over reg spans a wide range: the search actually moved
    assert values.max() - values.min() > 0.01
    np.testing.assert_array_equal(best_so_far(search["trials"], "maximize"), np.maximum.accumulate(values))


def test_a_seed_reproduces_the_search() -> None:
    a = run_experiment(_config(), progress=False)[0]
    b = run_experiment(_config(), progress=False)[0]
    assert [t["params"] for t in a["tuning"][0]["trials"]] == [t["params"] for t in b["tuning"][0]["trials"]]
    assert [t["value"] for t in a["tuning"][0]["trials"]] == [t["value"] for t in b["tuning"][0]["trials"]]
    assert a["metrics"] == b["metrics"]
    c = run_experiment(_config(seed=4), progress=False)[0]
    assert [t["params"] for t in c["tuning"][0]["trials"]] != [t["params"] for t in a["tuning"][0]["trials"]]


def test_rating_metrics_are_minimised() -> None:
    cfg = {
        "data": {"path": str(DATA), "format": "csv"},
        "split": {"method": "ratio", "ratio": 0.8, "order": "random", "seed": 0},
        "evaluation": {"task": "rating", "metrics": ["rmse", "mae"]},
        "models": [{"name": "BiasedMF", "factors": 4, "epochs": 3, "reg": {"log_uniform": [1e-3, 3.0]}}],
        "tuning": {"trials": 4, "seed": 0, "sampler": "random"},
    }
    (r,) = run_experiment(cfg, progress=False)
    search = r["tuning"][0]
    assert search["direction"] == "minimize" and search["metric"] == "rmse"
    assert search["best_value"] == min(t["value"] for t in search["trials"])


def test_train_command_tunes_open_spaces(tmp_path: Path) -> None:
    cfg = _config(trials=3)
    model, _ = train_on_all(cfg, "EASE")
    assert 0.1 <= model.reg <= 100000.0
    fixed, _ = train_on_all(cfg, "EASE", params={"reg": 250.0})
    assert fixed.reg == 250.0


def test_report_shows_the_chosen_settings_and_the_curve(tmp_path: Path) -> None:
    from recseek.evaluation.report import write_report

    results = run_experiment(_config(trials=4), progress=False, details=True)
    out = tmp_path / "r.html"
    write_report(results, out)
    html = out.read_text()
    assert '<h2 id="s-tune">Tuning</h2>' in html
    assert f"reg={results[0]['params']['reg']:.4g}" in html
    assert "validation ndcg@10" in html and "<polyline" in html


def test_missing_optuna_is_one_sentence(monkeypatch: pytest.MonkeyPatch) -> None:
    import sys

    monkeypatch.setitem(sys.modules, "optuna", None)  # what an environment without Optuna gives
    with pytest.raises(RecseekError, match=r"hyperparameter tuning needs optuna.*recseek\[tune\]"):
        run_experiment(_config(trials=2), progress=False)


def test_unknown_ray_engine_is_one_sentence() -> None:
    for engine in ("tune", "actors"):
        load_experiment(_config(ray_engine=engine))
    with pytest.raises(ParameterError, match=r"^<config>: \[tuning\] ray_engine must be 'tune' or 'actors', got 'pool'$"):
        load_experiment(_config(ray_engine="pool"))


def _objective(settings: dict[str, Any]) -> tuple[float, float]:
    """A validation value that peaks at reg = 100, and NaN (a failed trial) above 30000."""
    reg = float(settings["reg"])
    return (math.nan if reg > 30000 else -abs(math.log10(reg) - 2.0)), 0.0


class _WholeSearch:
    """A runner that drives the whole search (as the Ray Tune engine does): it runs the
    trials of each batch last to first, and tells the proposer their outcomes in order."""

    def __init__(self) -> None:
        self.batches: list[int] = []

    def search(self, proposer) -> None:
        while settings := proposer.next_batch():
            self.batches.append(len(settings))
            with pytest.raises(RuntimeError, match="has not been told"):
                proposer.next_batch()
            with pytest.raises(RuntimeError, match="outcomes for a batch of"):
                proposer.tell([(0.0, 0.0)] * (len(settings) + 1))
            outcomes = [_objective(s) for s in reversed(settings)][::-1]
            proposer.tell(outcomes)


@pytest.mark.parametrize("batch", [1, 3])
def test_a_search_runner_gives_the_trials_of_the_batch_loop(batch: int) -> None:
    """tune() hands a runner with ``search`` the same Optuna batches that the local loop runs."""
    from recseek.evaluation.tuning import check_tuning, tune

    data = ml100k_sample(60).binarize(4)
    split = {"method": "ratio", "ratio": 0.8, "order": "random", "seed": 0}
    ev = {"task": "ranking", "k": 10, "metrics": ["ndcg"]}
    tuning = {"trials": 7, "seed": 2, "batch": batch}
    check_tuning("exp", tuning, ev)
    spaces = {"reg": Space("log_uniform", 1.0, 100000.0)}
    seen: list[list[dict[str, Any]]] = []

    def batch_runner(settings):
        seen.append(settings)
        return [_objective(s) for s in settings]

    loop = tune("EASE", {"binary": True}, spaces, data, split, ev, tuning, None, runner=batch_runner)
    whole = _WholeSearch()
    driven = tune("EASE", {"binary": True}, spaces, data, split, ev, tuning, None, runner=whole)
    assert whole.batches == [len(s) for s in seen] == [batch] * (7 // batch) + ([7 % batch] if 7 % batch else [])
    assert all(s["binary"] is True for b in seen for s in b)
    assert [t["number"] for t in loop["trials"]] == list(range(7))
    strip = [{k: t[k] for k in ("number", "params", "value")} for t in loop["trials"]]
    assert strip == [{k: t[k] for k in ("number", "params", "value")} for t in driven["trials"]]
    assert loop["best_params"] == driven["best_params"] and loop["batch"] == driven["batch"] == batch
