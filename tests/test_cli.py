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


# ---------------------------------------------------------------- models list
def test_models_catalogue_matches_registry():
    from recseek._catalogue import entries
    from recseek.models import registry

    real = [(c.name, c.task, c.family, c.paper) for c in registry.available()]
    assert [tuple(e) for e in entries()] == real
    assert [e.name for e in entries("rating")] == [c.name for c in registry.available("rating")]


def test_models_fits_the_width_without_importing_kernels():
    code = ("import sys; from recseek.cli import main\n"
            "try:\n    main(['models', '--width', '80'])\nexcept SystemExit:\n    pass\n"
            "print('IMPORTED', sorted(m for m in ('numba', 'scipy', 'recseek.models') if m in sys.modules))")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    assert lines[-1] == "IMPORTED []"
    table = lines[:-1]
    assert max(len(line) for line in table) <= 80
    assert any(line.startswith("EASE ") for line in table)
    # a wrapped paper continues under the paper column
    paper_col = table[0].index("paper")
    assert any(line.startswith(" " * paper_col) and line.strip() for line in table[2:])


def test_format_table_wraps_only_the_last_text_column():
    text = cli_module.format_table(["a", "b"], [["x", "word " * 30], ["yy", "short"]], width=40)
    lines = text.splitlines()
    assert max(len(line) for line in lines) <= 40
    assert " ".join(w for line in lines[2:] for w in line.split() if w not in ("x", "yy")) == \
        " ".join(["word"] * 30 + ["short"])


# ---------------------------------------------------------------- train, save, recommend
def _item_csv(tmp_path: Path) -> Path:
    """A RecBole folder with titles, so that saved models carry item side data."""
    d = tmp_path / "toy"
    d.mkdir()
    rng = np.random.default_rng(1)
    lines = ["user_id:token\titem_id:token\trating:float\ttimestamp:float"]
    for u in range(30):
        for n, i in enumerate(rng.choice(20, 8, replace=False)):
            lines.append(f"u{u}\t{i}\t{rng.integers(1, 6)}\t{u * 10 + n}")
    (d / "toy.inter").write_text("\n".join(lines) + "\n")
    items = ["item_id:token\ttitle:token_seq\tgenres:token_seq"]
    items += [f"{i}\tFilm number {i}\t{'Comedy' if i % 2 else 'Drama'}" for i in range(20)]
    (d / "toy.item").write_text("\n".join(items) + "\n")
    return d


def test_train_saves_versions_and_recommend_prints_titles(tmp_path):
    data = _item_csv(tmp_path)
    out = tmp_path / "store" / "movies"
    for version in ("1", "2"):
        res = _invoke("train", "--model", "ItemKNNRanking", "--data", str(data), "--param", "neighbors=5",
                      "--out", str(out))
        assert res.exit_code == 0, res.output
        assert f"saved to {out / version}" in res.stdout
    assert sorted(p.name for p in out.iterdir()) == ["1", "2"]
    from recseek.models.base import Recommender
    from recseek.persistence import read_item_data

    model = Recommender.load(out / "2")
    assert model.neighbors == 5 and model.seen_.nnz == 30 * 8  # fitted on all the data, no split
    frame = read_item_data(out / "2")
    assert frame.loc[3, "title"] == "Film number 3"
    rec = _invoke("recommend", str(out / "2"), "--user", "u4", "-k", "3")
    assert rec.exit_code == 0, rec.output
    header, *rows = [line for line in rec.stdout.splitlines() if line.strip()]
    assert header.split() == ["rank", "item", "score", "title", "genres"]
    for row in rows[1:]:
        item = row.split()[1]
        assert f"Film number {item}" in row and ("Comedy" if int(item) % 2 else "Drama") in row


def test_train_from_config_uses_its_data_and_params(tmp_path):
    csv_path = _csv(tmp_path / "r.csv")
    p = _toml(tmp_path, Path("r.csv"), models='[[models]]\nname = "ItemKNNRanking"\nlabel = "knn"\nneighbors = 3')
    res = _invoke("train", "--model", "knn", "--config", str(p), "--param", "shrinkage=2", "--out",
                  str(tmp_path / "s" / "knn"))
    assert res.exit_code == 0, res.output
    from recseek.models.base import Recommender

    model = Recommender.load(tmp_path / "s" / "knn" / "1")
    assert (model.neighbors, model.shrinkage) == (3, 2)
    assert csv_path.exists()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--model", "NoSuchModel", "--data", "DATA"], "unknown model 'NoSuchModel'"),
        (["--model", "EASE", "--data", "DATA", "--param", "nope=1"], "no hyperparameter 'nope'"),
        (["--model", "EASE", "--data", "DATA", "--param", "reg"], "must look like name=value"),
        (["--model", "EASE", "--data", "missing.csv"], "missing.csv"),
        (["--model", "EASE"], "--data is required"),
    ],
)
def test_train_mistakes(tmp_path, args, message):
    data = _csv(tmp_path / "r.csv")
    args = [str(data) if a == "DATA" else (str(tmp_path / a) if a == "missing.csv" else a) for a in args]
    res = _invoke("train", *args, "--out", str(tmp_path / "store" / "m"))
    _assert_one_line_error(res)
    assert message in res.stderr
    assert not (tmp_path / "store").exists() or not any((tmp_path / "store").rglob("manifest.json"))


def test_run_save_dir_and_save_key(tmp_path):
    data = _item_csv(tmp_path)
    p = tmp_path / "exp.toml"
    p.write_text(f'[data]\npath = "{data.name}"\n\n[split]\nmethod = "random"\nseed = 0\n\n'
                 '[[models]]\nname = "MostPopular"\nlabel = "pop"\n\n'
                 '[[models]]\nname = "ItemKNNRanking"\nsave = "own/knn"\n')
    out = tmp_path / "res.json"
    res = _invoke("run", str(p), "--save-dir", str(tmp_path / "store"), "--no-progress", "--json", str(out))
    assert res.exit_code == 0, res.output
    assert (tmp_path / "store" / "pop" / "1" / "manifest.json").is_file()
    assert (tmp_path / "own" / "knn" / "1" / "manifest.json").is_file()  # relative to the TOML file
    saved = {r["model"]: r["saved"] for r in json.loads(out.read_text())}
    assert saved == {"pop": str(tmp_path / "store" / "pop" / "1"), "ItemKNNRanking": str(tmp_path / "own" / "knn" / "1")}
    again = _invoke("run", str(p), "--save-dir", str(tmp_path / "store"), "--no-progress")
    assert again.exit_code == 0 and (tmp_path / "store" / "pop" / "2").is_dir()
    from recseek.persistence import read_item_data

    assert read_item_data(tmp_path / "store" / "pop" / "2").loc[7, "genres"] == "Comedy"


@pytest.mark.parametrize(
    ("models", "split", "message"),
    [
        ('[[models]]\nname = "MostPopular"\nlabel = "my model"', 'method = "random"', "cannot name a model-store folder"),
        ('[[models]]\nname = "MostPopular"', 'method = "kfold"\nk = 3', "saved only from one split"),
        ('[[models]]\nname = "MostPopular"\nsave = 3', 'method = "random"', "save must be a folder path"),
    ],
)
def test_run_save_mistakes_fail_before_training(tmp_path, models, split, message):
    data = _csv(tmp_path / "r.csv")
    p = tmp_path / "exp.toml"
    p.write_text(f'[data]\npath = "{data}"\n\n[split]\n{split}\n\n{models}\n')
    res = _invoke("run", str(p), "--save-dir", str(tmp_path / "store"), "--no-progress")
    _assert_one_line_error(res)
    assert message in res.stderr
    assert not (tmp_path / "store").exists()


def test_run_reports_compile_seconds(tmp_path):
    p = _toml(tmp_path, _csv(tmp_path / "r.csv"), models='[[models]]\nname = "ItemKNNRanking"')
    out = tmp_path / "res.json"
    res = _invoke("run", str(p), "--no-progress", "--json", str(out))
    assert res.exit_code == 0, res.output
    header = next(line for line in res.stdout.splitlines() if line.startswith("model"))
    assert "compile s" in header and header.index("compile s") < header.index("fit s")
    r = json.loads(out.read_text())[0]
    assert r["compile_seconds"] >= 0 and r["fit_seconds"] >= 0


def test_demo_checks_the_user_before_training(monkeypatch):
    from recseek.models import registry

    def no_training(*a, **k):
        raise AssertionError("a model was created before --user was checked")

    monkeypatch.setattr(registry, "create", no_training)
    res = _invoke("demo", "--user", "typo")
    _assert_one_line_error(res)
    assert "--user 'typo' is not in MovieLens-100K" in res.stderr


def test_toml_run_hints_name_the_toml_key(tmp_path):
    data = tmp_path / "people.csv"
    data.write_text("person,thing\n1,2\n3,4\n")
    p = tmp_path / "exp.toml"
    p.write_text(f'[data]\npath = "{data.name}"\n\n[[models]]\nname = "MostPopular"\n')
    res = _invoke("run", str(p), "--no-progress")
    _assert_one_line_error(res)
    assert 'name it in [data] with options = { columns = { user = "..." } }' in res.stderr
    assert "columns={" not in res.stderr
    odd = tmp_path / "ratings.data"
    odd.write_text("1,2\n")
    p.write_text(f'[data]\npath = "{odd.name}"\n\n[[models]]\nname = "MostPopular"\n')
    res = _invoke("run", str(p), "--no-progress")
    _assert_one_line_error(res)
    assert 'set format = "..." in [data]' in res.stderr and "format=" not in res.stderr.replace('format = "', "")
