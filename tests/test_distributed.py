"""Batch scoring (``recseek score``) and the Ray backend: the local path writes exactly what
``recommend`` gives, and Ray (a private instance on 127.0.0.1) gives identical rows and an
identical tuning search."""

from __future__ import annotations

import contextlib
import csv
import math
import tempfile
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner

from recseek.cli import cli
from recseek.data._vocab import Vocabulary
from recseek.distributed import _POOLS, ray_session
from recseek.errors import DataError
from recseek.evaluation.batch import BLOCK_USERS, read_user_ids, score_file, write_rankings
from recseek.evaluation.experiment import run_experiment
from recseek.models import create
from recseek.testing.fixtures import ml100k_sample


@pytest.fixture(scope="module")
def saved(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, object, Path]:
    data = ml100k_sample(200).binarize(4)
    model = create("EASE", reg=200.0).fit(data)
    root = tmp_path_factory.mktemp("score")
    path = model.save(root / "model")
    users = root / "users.txt"
    ids = [str(x) for x in data.users.ids[::-1]]  # not in index order
    users.write_text("user\n# every user, last first\n" + "\n".join(ids) + "\n")
    return path, model, users


def _expected(model, users: list[str], k: int) -> pd.DataFrame:
    idx = np.array([model.users_.index(u) for u in users])
    r = model.recommend(idx, k)
    rows = []
    for u, ids, scores in zip(users, r.ids, r.scores, strict=True):
        for rank, (i, s) in enumerate(zip(ids[ids >= 0], scores[ids >= 0], strict=True), start=1):
            rows.append((u, rank, str(model.items_.id(int(i))), float(s)))
    return pd.DataFrame(rows, columns=["user", "rank", "item", "score"])


def _read(path: Path) -> pd.DataFrame:
    return pd.read_csv(path, dtype={"user": str, "item": str}, sep="\t" if path.suffix == ".tsv" else ",")


def test_local_scoring_writes_what_recommend_gives(saved, tmp_path: Path) -> None:
    path, model, users = saved
    out = tmp_path / "top.csv"
    info = score_file(path, users, out, k=7)
    got = _read(out)
    want = _expected(model, read_user_ids(users), 7)
    assert info == {"users": len(read_user_ids(users)), "rows": len(want), "backend": "local"}
    pd.testing.assert_frame_equal(got[["user", "rank", "item"]], want[["user", "rank", "item"]])
    np.testing.assert_allclose(got["score"], want["score"], rtol=1e-6)


def test_unknown_users_are_named_and_nothing_is_written(saved, tmp_path: Path) -> None:
    path, model, users = saved
    bad = tmp_path / "users.txt"
    bad.write_text(f"{model.users_.id(0)}\nnobody\n")
    out = tmp_path / "top.csv"
    with pytest.raises(DataError, match=r"1 user id\(s\) are not in the model's training data \(first: 'nobody'\)"):
        score_file(path, bad, out)
    assert not out.exists()
    info = score_file(path, bad, out, skip_unknown=True)
    assert info["users"] == 1 and set(_read(out)["user"]) == {str(model.users_.id(0))}
    two = tmp_path / "two.txt"
    two.write_text("1,2\n")
    with pytest.raises(DataError, match=r"two.txt, line 1: expected one user id per line"):
        read_user_ids(two)


def test_score_command(saved, tmp_path: Path) -> None:
    path, model, users = saved
    out = tmp_path / "top.tsv"
    res = CliRunner().invoke(cli, ["score", str(path), "--users", str(users), "--out", str(out), "-k", "3"])
    assert res.exit_code == 0, res.output
    assert "rows for" in res.output and len(_read(out)) == 3 * len(read_user_ids(users))
    res = CliRunner().invoke(cli, ["score", str(path), "--users", str(users), "--out", str(out), "--workers", "2"])
    assert res.exit_code == 2 and "apply only with --backend ray" in res.output
    res = CliRunner().invoke(cli, ["score", str(path), "--users", str(tmp_path / "none.txt"), "--out", str(out)])
    assert res.exit_code == 2 and "does not exist" in res.output and "Traceback" not in res.output


def test_rankings_file_quotes_ids_and_numbers_ranks_per_user(tmp_path: Path) -> None:
    """Ids holding the delimiter or a quote survive a CSV reader; short rows keep their ranks."""
    items = Vocabulary(["plain", "a,b", 'say "x"', "tab\there"], name="item")
    ids = np.array([[1, 0, 3], [2, -1, -1], [-1, -1, -1]])
    scores = np.array([[3.5, 2.25, 1.0], [0.125, -np.inf, -np.inf], [-np.inf] * 3], dtype=np.float32)
    out = tmp_path / "top.csv"
    rows = write_rankings(out, ["u1", "u,2", "u3"], ids, scores, items)
    with out.open(newline="", encoding="utf-8") as f:
        got = list(csv.reader(f))
    assert rows == 4 and got == [["user", "rank", "item", "score"], ["u1", "1", "a,b", "3.5"], ["u1", "2", "plain", "2.25"],
                                 ["u1", "3", "tab\there", "1.0"], ["u,2", "1", 'say "x"', "0.125"]]
    tsv = tmp_path / "top.tsv"
    write_rankings(tsv, ["u1", "u,2", "u3"], ids, scores, items)
    with tsv.open(newline="", encoding="utf-8") as f:
        assert [r[2] for r in csv.reader(f, delimiter="\t")][1:] == ["a,b", "plain", "tab\there", 'say "x"']


@pytest.mark.slow
def test_ray_scoring_equals_local(saved, tmp_path: Path) -> None:
    pytest.importorskip("ray", reason="the ray extra is not installed")
    path, model, users = saved
    local, remote = tmp_path / "local.csv", tmp_path / "ray.csv"
    score_file(path, users, local, k=10)
    timings: dict = {}
    info = score_file(path, users, remote, k=10, backend="ray", workers=2, timings=timings)
    assert info["backend"] == "ray"
    assert local.read_bytes() == remote.read_bytes()
    # every block was scored once, by at most the two actors asked for
    stats = timings["ray"]
    n = len(read_user_ids(users))
    assert stats["users"] == n and stats["workers"] == 2 and 1 <= stats["actors"] <= 2
    assert sum(a["batches"] for a in stats["per_actor"]) == -(-n // BLOCK_USERS)
    assert stats["steady_s"] >= 0 and stats["startup_s"] >= 0 and set(timings) >= {"read", "load", "score", "write"}


def _sweep_config(tmp_path: Path, engine: str) -> dict:
    data = ml100k_sample(150)
    u, i, v, t = data.to_coo()
    csv = tmp_path / "r.csv"
    pd.DataFrame({"user": data.users.ids[u], "item": data.items.ids[i], "rating": v, "timestamp": t}).to_csv(
        csv, index=False)
    return {
        "data": {"path": str(csv), "format": "csv", "min_rating": 4, "binarize": True},
        "split": {"method": "ratio", "ratio": 0.8, "order": "random", "seed": 0},
        "evaluation": {"task": "ranking", "k": 10, "metrics": ["ndcg"]},
        # max_items = 10 cannot train on this catalogue (EASE raises a ParameterError in fit):
        # such a trial is NaN on every path
        "models": [{"name": "EASE", "reg": {"log_uniform": [1.0, 10000.0]}, "max_items": [50000, 10]}],
        "tuning": {"trials": 6, "seed": 1, "batch": 2, "sampler": "tpe", "ray_engine": engine},
    }


@contextlib.contextmanager
def _tune_folders(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[str]]:
    """The temporary folders recseek makes for Ray Tune's storage (recorded as made)."""
    made: list[str] = []
    real = tempfile.mkdtemp

    def record(*args, **kwargs):
        path = real(*args, **kwargs)
        if "recseek-tune-" in Path(path).name:
            made.append(path)
        return path

    monkeypatch.setattr(tempfile, "mkdtemp", record)
    yield made


@pytest.mark.slow
@pytest.mark.parametrize("engine", ["tune", "actors"])
def test_ray_sweep_equals_local(tmp_path: Path, engine: str, monkeypatch: pytest.MonkeyPatch,
                                capfd: pytest.CaptureFixture[str]) -> None:
    pytest.importorskip("ray", reason="the ray extra is not installed")
    cfg = _sweep_config(tmp_path, engine)
    local = run_experiment(cfg, progress=False)[0]
    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv("HOME", str(home))  # where Tune's default storage (~/ray_results) would go
    capfd.readouterr()
    with _tune_folders(monkeypatch) as made, ray_session(2) as ray:  # a session opened by the caller is joined
        remote = run_experiment(cfg, progress=False, backend="ray", workers=2)[0]
        if engine == "actors":
            # one pool of two long-lived actors served every batch of the search
            assert [len(p) for p in _POOLS.values()] == [2] and ray.get_runtime_context().get_job_id() in _POOLS
        else:
            # Ray Tune ran the trials (no actor pool) with its storage in one temporary folder,
            # and its folders in Ray's session folder were removed
            from ray.train.constants import _get_ray_train_session_dir

            assert not _POOLS and len(made) == 1
            assert not list(Path(_get_ray_train_session_dir()).glob("*/recseek-sweep-*"))
    assert not _POOLS
    # nothing left behind, nothing printed: no ~/ray_results, the storage folder removed, and
    # neither Tune's progress tables nor its "View detailed results here" lines
    assert not (home / "ray_results").exists() and not any(Path(m).exists() for m in made)
    out, err = capfd.readouterr()
    for noise in ("View detailed results", "Configuration for experiment", "Trial status", "ray_results", "Traceback"):
        assert noise not in out + err
    def strip(result):  # NaN as a string, so that equal searches compare equal
        return [{"number": t["number"], "params": t["params"], "value": repr(t["value"])}
                for t in result["tuning"][0]["trials"]]

    assert strip(local) == strip(remote)
    assert local["metrics"] == remote["metrics"] and local["params"] == remote["params"]
    # the untrainable setting was proposed and came back as NaN, the others trained
    assert {t["params"]["max_items"] for t in remote["tuning"][0]["trials"]} == {10, 50000}
    assert all(math.isnan(t["value"]) == (t["params"]["max_items"] == 10) for t in remote["tuning"][0]["trials"])


@pytest.mark.slow
def test_a_trial_that_raises_is_nan_and_the_sweep_goes_on() -> None:
    """An exception in a Ray Tune trial (Tune's error path) makes that trial NaN, with the
    error named, and the search carries on with the next batches."""
    pytest.importorskip("ray", reason="the ray extra is not installed")
    from recseek.distributed import tune_search
    from recseek.evaluation.tuning import Proposer, Space

    def trainable(config):
        import json

        from ray import tune

        x = json.loads(config["settings"])["x"]
        if x == 1:
            raise ValueError(f"x = {x} does not fit")
        tune.report({"value": float(x), "seconds": 0.5})

    tuning = {"trials": 8, "seed": 0, "batch": 2, "sampler": "random"}
    proposer = Proposer({"fixed": True}, {"x": Space("choice", choices=(0, 1, 2))}, tuning, "maximize")
    local = Proposer({"fixed": True}, {"x": Space("choice", choices=(0, 1, 2))}, tuning, "maximize")
    while settings := local.next_batch():
        local.tell([(math.nan if s["x"] == 1 else float(s["x"]), 0.5) for s in settings])
    with ray_session(2) as ray:
        tune_search(ray, proposer, trainable, 2)
    trials = proposer.trials
    assert [t["number"] for t in trials] == list(range(8))
    assert [t["params"] for t in trials] == [t["params"] for t in local.trials]
    assert any(t["params"]["x"] == 1 for t in trials) and any(t["params"]["x"] != 1 for t in trials)
    for t in trials:
        if t["params"]["x"] == 1:
            assert math.isnan(t["value"]) and t["error"] == "ValueError: x = 1 does not fit"
        else:
            assert t["value"] == t["params"]["x"] and t["seconds"] == 0.5 and "error" not in t


@pytest.mark.slow
def test_tune_runs_the_trials_of_a_batch_together_in_reused_processes(tmp_path: Path) -> None:
    """Every batch's two trials overlap in time and two processes serve all the trials:
    with Tune's default, between batches Tune kept one of the two trial processes (the
    searcher now counts an outcome when it is reported; counting it at the trial's end
    again gives five processes here).

    Each trial marks its start and waits (30 s at most) for the other trial of its batch to
    start: how long a trial process takes to come up no longer decides whether the two
    overlap, and a Tune that ran them one after the other fails the test with a timeout.
    The same wait hides the other Tune setting recseek changes, one pending trial at a time
    (``TUNE_MAX_PENDING_TRIALS_PG``): with it the second trial only starts later, by a
    process start-up, which no test here can tell from a slow machine."""
    pytest.importorskip("ray", reason="the ray extra is not installed")
    from recseek.distributed import tune_search
    from recseek.evaluation.tuning import Proposer, Space

    folder = str(tmp_path)

    def trainable(config):
        import os
        import time

        from ray import tune

        start = time.time()
        number = int(config["number"])
        open(os.path.join(folder, str(number)), "w").close()
        partner = os.path.join(folder, str(number ^ 1))
        while not os.path.exists(partner):
            if time.time() - start > 30:
                raise TimeoutError(f"trial {number ^ 1} did not start while trial {number} ran")
            time.sleep(0.02)
        time.sleep(0.2)
        tune.report({"value": start, "seconds": time.time() - start, "pid": os.getpid()})

    tuning = {"trials": 8, "seed": 0, "batch": 2, "sampler": "random"}
    proposer = Proposer({}, {"x": Space("uniform", 0.0, 1.0)}, tuning, "maximize")
    with ray_session(2) as ray:
        pids = tune_search(ray, proposer, trainable, 2)
    trials = proposer.trials
    assert [t["number"] for t in trials] == list(range(8))
    assert all("error" not in t for t in trials), [t.get("error") for t in trials]
    for a, b in zip(trials[0::2], trials[1::2], strict=True):  # the batches: their trials overlap in time
        assert max(a["value"], b["value"]) < min(a["value"] + a["seconds"], b["value"] + b["seconds"])
    assert len(pids) == 2
