"""The command line: run, models, recommend, lazy commands and one-line errors."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from recseek import cli as cli_module
from recseek.cli import cli


def _csv(path: Path, seed: int = 0) -> Path:
    rng = np.random.default_rng(seed)
    lines = ["user,item,rating,timestamp"]
    for u in range(30):
        for n, i in enumerate(rng.choice(20, 6, replace=False)):
            lines.append(f"{u},{i},{rng.integers(1, 6)},{u * 10 + n}")
    path.write_text("\n".join(lines) + "\n")
    return path


def _toml(tmp_path: Path, data: Path, extra_eval: str = "", models: str = '[[models]]\nname = "MostPopular"') -> Path:
    p = tmp_path / "exp.toml"
    p.write_text(
        f'[data]\npath = "{data}"\nformat = "csv"\n\n[split]\nmethod = "random"\nseed = 0\n\n'
        f'[evaluation]\nmetrics = ["ndcg", "precision"]\n{extra_eval}\n\n{models}\n'
    )
    return p


def _invoke(*args: str):
    return CliRunner().invoke(cli, list(args), catch_exceptions=False)


def _assert_one_line_error(result) -> None:
    assert result.exit_code == 2, result.output
    err = result.stderr.strip()
    assert err.startswith("error: "), err
    assert len(err.splitlines()) == 1, err
    assert "Traceback" not in result.output


def test_run_prints_table_and_writes_json(tmp_path):
    p = _toml(tmp_path, _csv(tmp_path / "r.csv"), models='[[models]]\nname = "MostPopular"\n[[models]]\nname = "RandomGuess"')
    out = tmp_path / "res.json"
    result = _invoke("run", str(p), "--json", str(out), "--no-progress")
    assert result.exit_code == 0, result.output
    assert "protocol: full ranking" in result.stdout
    lines = result.stdout.splitlines()
    header = next(line for line in lines if line.startswith("model"))
    assert "ndcg@10" in header and "fit s" in header and "predict s" in header
    assert any(line.startswith("MostPopular") for line in lines)
    assert any(line.startswith("RandomGuess") for line in lines)
    data = json.loads(out.read_text())
    assert [r["model"] for r in data] == ["MostPopular", "RandomGuess"]
    assert set(data[0]) >= {"model", "params", "metrics", "fit_seconds", "predict_seconds"}


def test_run_data_override(tmp_path):
    p = _toml(tmp_path, tmp_path / "absent.csv")
    result = _invoke("run", str(p), "--data", str(_csv(tmp_path / "r2.csv")), "--no-progress")
    assert result.exit_code == 0, result.output


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("usr,item,rating\n1,2,3\n", "usr"),  # missing column
        ("user,item,rating\n1,2,abc\n", "abc"),  # non-numeric rating
        ("", "empty"),  # empty file
    ],
)
def test_bad_data_files(tmp_path, content, message):
    data = tmp_path / "bad.csv"
    data.write_text(content)
    p = tmp_path / "exp.toml"
    p.write_text(f'[data]\npath = "{data}"\nformat = "csv"\noptions = {{ columns = {{ user = "user", item = "item", '
                 f'rating = "rating" }} }}\n\n[[models]]\nname = "MostPopular"\n')
    result = _invoke("run", str(p), "--no-progress")
    _assert_one_line_error(result)
    assert "bad.csv" in result.stderr
    assert message in result.stderr.lower() or message in result.stderr


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (("", 'k = 0'), "k must be a positive integer"),
        (('name = "MostPopular"', 'name = "NoSuchModel"'), "unknown model 'NoSuchModel'"),
        (('name = "MostPopular"', 'name = "RandomGuess"\nsed = 1'), "no hyperparameter 'sed'"),
        (("[split]", "[split"), "invalid TOML"),
    ],
)
def test_bad_experiments(tmp_path, edit, message):
    p = _toml(tmp_path, _csv(tmp_path / "r.csv"))
    text = p.read_text()
    if edit[0]:
        text = text.replace(edit[0], edit[1], 1)
    else:
        text = text.replace("[evaluation]", "[evaluation]\n" + edit[1], 1)
    p.write_text(text)
    result = _invoke("run", str(p), "--no-progress")
    _assert_one_line_error(result)
    assert message in result.stderr and "exp.toml" in result.stderr


def test_missing_paths(tmp_path):
    _assert_one_line_error(_invoke("run", str(tmp_path / "nope.toml")))
    p = _toml(tmp_path, tmp_path / "gone.csv")
    result = _invoke("run", str(p), "--no-progress")
    _assert_one_line_error(result)
    assert "gone.csv" in result.stderr
    _assert_one_line_error(_invoke("recommend", str(tmp_path / "no-model"), "--user", "1"))


def test_models_lists_registry():
    result = _invoke("models")
    assert result.exit_code == 0
    assert "MostPopular" in result.stdout and "GlobalAverage" in result.stdout
    rating = _invoke("models", "--task", "rating").stdout
    assert "GlobalAverage" in rating and "MostPopular" not in rating


def test_recommend_from_saved_model(tmp_path):
    from recseek.data.readers import read
    from recseek.models import create

    data = read(_csv(tmp_path / "r.csv"), format="csv")
    create("MostPopular").fit(data).save(tmp_path / "model")
    (tmp_path / "model" / "titles.json").write_text(json.dumps({str(i): f"Film {i}" for i in range(20)}))
    result = _invoke("recommend", str(tmp_path / "model"), "--user", "3", "-k", "4")
    assert result.exit_code == 0, result.output
    rows = [line for line in result.stdout.splitlines()[2:] if line.strip()]
    assert len(rows) == 4 and "Film" in rows[0]
    seen = {str(x) for x in data.items.lookup(data.items_of(data.users.index(3)))}
    assert not {r.split()[1] for r in rows} & seen
    _assert_one_line_error(_invoke("recommend", str(tmp_path / "model"), "--user", "999"))
    for bad in ("0", "-2"):
        res = _invoke("recommend", str(tmp_path / "model"), "--user", "3", "-k", bad)
        _assert_one_line_error(res)
        assert "k must be a positive integer" in res.stderr


def test_lazy_command_missing_module(monkeypatch):
    monkeypatch.setitem(cli_module.LAZY_COMMANDS, "index",
                        ("recseek._no_such_module", "index_cmd", "search", "Build a search index."))
    result = _invoke("index", "whatever", "--flag")
    _assert_one_line_error(result)
    assert "pip install 'recseek[search]'" in result.stderr
    help_text = _invoke("--help").stdout
    for name in ("index", "search", "search-eval", "serve", "retrain", "run", "demo", "models", "recommend"):
        assert name in help_text


def test_subprocess_entry_point(tmp_path):
    bad = tmp_path / "bad.toml"
    bad.write_text("[data\n")
    proc = subprocess.run([sys.executable, "-m", "recseek", "run", str(bad)], capture_output=True, text=True,
                          timeout=120)
    assert proc.returncode == 2
    assert proc.stderr.startswith("error: ") and len(proc.stderr.strip().splitlines()) == 1
    assert "Traceback" not in proc.stderr
    ok = subprocess.run([sys.executable, "-m", "recseek", "--help"], capture_output=True, text=True, timeout=120)
    assert ok.returncode == 0 and "recommend" in ok.stdout
