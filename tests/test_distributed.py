"""Batch scoring (``recseek score``) and the Ray backend: the local path writes exactly what
``recommend`` gives, and Ray (a private instance on 127.0.0.1) gives identical rows and an
identical tuning search."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner

from recseek.cli import cli
from recseek.errors import DataError
from recseek.evaluation.batch import read_user_ids, score_file
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


@pytest.mark.slow
def test_ray_scoring_equals_local(saved, tmp_path: Path) -> None:
    pytest.importorskip("ray", reason="the ray extra is not installed")
    path, model, users = saved
    local, remote = tmp_path / "local.csv", tmp_path / "ray.csv"
    score_file(path, users, local, k=10)
    info = score_file(path, users, remote, k=10, backend="ray", workers=2)
    assert info["backend"] == "ray"
    assert local.read_bytes() == remote.read_bytes()


@pytest.mark.slow
def test_ray_sweep_equals_local(tmp_path: Path) -> None:
    pytest.importorskip("ray", reason="the ray extra is not installed")
    data = ml100k_sample(150)
    u, i, v, t = data.to_coo()
    csv = tmp_path / "r.csv"
    pd.DataFrame({"user": data.users.ids[u], "item": data.items.ids[i], "rating": v, "timestamp": t}).to_csv(
        csv, index=False)
    cfg = {
        "data": {"path": str(csv), "format": "csv", "min_rating": 4, "binarize": True},
        "split": {"method": "ratio", "ratio": 0.8, "order": "random", "seed": 0},
        "evaluation": {"task": "ranking", "k": 10, "metrics": ["ndcg"]},
        "models": [{"name": "EASE", "reg": {"log_uniform": [1.0, 10000.0]}}],
        "tuning": {"trials": 6, "seed": 1, "batch": 2, "sampler": "tpe"},
    }
    local = run_experiment(cfg, progress=False)[0]
    remote = run_experiment(cfg, progress=False, backend="ray", workers=2)[0]
    strip = [{k: t[k] for k in ("number", "params", "value")} for t in local["tuning"][0]["trials"]]
    assert strip == [{k: t[k] for k in ("number", "params", "value")} for t in remote["tuning"][0]["trials"]]
    assert local["metrics"] == remote["metrics"] and local["params"] == remote["params"]
