"""Side-data files named in an experiment's [data] table reach the Interactions the models see."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from recseek.errors import RecseekError
from recseek.evaluation.experiment import _load_data, load_experiment, run_experiment


@pytest.fixture()
def files(tmp_path: Path) -> Path:
    rng = np.random.default_rng(0)
    lines = ["user,item,rating"]
    for u in range(30):
        for i in rng.choice(20, 6, replace=False):
            lines.append(f"u{u},i{i},{rng.integers(1, 6)}")
    (tmp_path / "ratings.csv").write_text("\n".join(lines) + "\n")
    (tmp_path / "trust.txt").write_text("".join(f"u{u} u{(u + 1) % 30} 1\n" for u in range(30)))
    (tmp_path / "features.csv").write_text("".join(f"i{i},{i % 2},{(i // 2) % 3}.5\n" for i in range(20)))
    (tmp_path / "places.txt").write_text("".join(f"i{i} {i * 0.5} {-i * 0.25}\n" for i in range(20)))
    return tmp_path


def _config(files: Path, **data) -> dict:
    return {"data": {"path": str(files / "ratings.csv"), "format": "csv", **data},
            "split": {"method": "ratio", "ratio": 0.8, "order": "random", "seed": 0},
            "evaluation": {"task": "rating", "metrics": ["rmse"]},
            "models": [{"name": "BiasedMF", "factors": 2, "epochs": 2}]}


def test_side_files_are_attached(files: Path) -> None:
    cfg = _config(files, trust=str(files / "trust.txt"), item_features=str(files / "features.csv"),
                  locations=str(files / "places.txt"))
    data = _load_data(load_experiment(cfg), None)
    assert data.trust.nnz == 30
    u = data.users.index("u3")
    assert data.trust[[u]].indices.tolist() == [data.users.index("u4")]
    assert data.item_features.shape == (data.n_items, 2)
    row = data.item_features[[data.items.index("i5")]].toarray()[0]
    np.testing.assert_allclose(row, [1.0, 2.5])
    i7 = data.items.index("i7")
    assert data.item_data.loc[i7, "latitude"] == 3.5 and data.item_data.loc[i7, "longitude"] == -1.75
    for kind in ("trust", "item_features", "item_locations"):
        assert data.has(kind)


def test_relative_side_paths_and_their_errors(files: Path) -> None:
    toml = files / "exp.toml"
    toml.write_text('[data]\npath = "ratings.csv"\nformat = "csv"\ntrust = "trust.txt"\n'
                    '[evaluation]\ntask = "rating"\n[[models]]\nname = "BiasedMF"\nfactors = 2\nepochs = 1\n')
    assert _load_data(load_experiment(toml), None).trust.nnz == 30
    toml.write_text(toml.read_text().replace('trust = "trust.txt"', 'trust = "nowhere.txt"'))
    with pytest.raises(RecseekError, match=r"\[data\] trust file .*nowhere.txt does not exist"):
        run_experiment(toml, progress=False)
    with pytest.raises(RecseekError, match=r"\[data\] trust must be a file path"):
        load_experiment(_config(files, trust=3))
    (files / "trust.txt").write_text("u1 stranger 1\n")
    with pytest.raises(RecseekError, match=r"trust.txt.*line 1"):
        _load_data(load_experiment(_config(files, trust=str(files / "trust.txt"))), None)


def test_review_and_checkin_formats(tmp_path: Path) -> None:
    (tmp_path / "reviews.txt").write_text("0,0,1:2:2,5.0\n1,0,3,4.0\n1,1,1:4,2.0\n0,1,2,3.0\n")
    cfg = _config(tmp_path, path=str(tmp_path / "reviews.txt"), format="reviews")
    data = _load_data(load_experiment(cfg), None)
    assert data.has("reviews") and data.meta["review_words"].shape[0] == data.nnz == 4
    (tmp_path / "checkins.txt").write_text("USER_1 LOC_1 1\nUSER_1 LOC_2 2\nUSER_2 LOC_1 1\n")
    cfg = _config(tmp_path, path=str(tmp_path / "checkins.txt"), format="checkins")
    data = _load_data(load_experiment(cfg), None)
    assert data.nnz == 3 and data.matrix.sum() == 4


def test_train_command_reads_side_files(files: Path) -> None:
    from click.testing import CliRunner

    from recseek.cli import cli
    from recseek.models.base import Recommender

    out = files / "store" / "social"
    res = CliRunner().invoke(cli, ["train", "--model", "SocialMF", "--data", str(files / "ratings.csv"),
                                   "--trust", str(files / "trust.txt"), "--param", "epochs=2", "--out", str(out)])
    assert res.exit_code == 0, res.output
    assert Recommender.load(out / "1").n_users_ == 30
    res = CliRunner().invoke(cli, ["train", "--model", "SocialMF", "--data", str(files / "ratings.csv"),
                                   "--out", str(out)])
    assert res.exit_code == 2 and "SocialMF needs a user-user trust graph" in res.output
