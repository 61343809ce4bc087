"""Optional dependencies: a missing package gives one sentence naming the extra to install."""

from __future__ import annotations

import importlib.abc
import json
import subprocess
import sys
import textwrap
import tomllib
from pathlib import Path

import pytest
from click.testing import CliRunner

from recseek._interface import calling_from
from recseek._optional import EXTRAS, MissingDependencyError, explain, require
from recseek.cli import cli

ROOT = Path(__file__).resolve().parents[1]

#: Run in a subprocess: refuse to import the modules named in argv[1] (comma-separated),
#: then run the recseek command line with the remaining arguments.
BLOCKER = textwrap.dedent("""
    import importlib.abc, sys
    blocked = set(sys.argv[1].split(","))
    class Block(importlib.abc.MetaPathFinder):
        def find_spec(self, name, path=None, target=None):
            if name.split(".")[0] in blocked:
                raise ModuleNotFoundError(f"No module named {name!r}", name=name)
            return None
    sys.meta_path.insert(0, Block())
    from recseek.cli import main
    sys.argv = ["recseek", *sys.argv[2:]]
    main()
""")


class _Block(importlib.abc.MetaPathFinder):
    def __init__(self, names: set[str]) -> None:
        self.names = names

    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in self.names:
            raise ModuleNotFoundError(f"No module named {name!r}", name=name)
        return None


@pytest.fixture
def block(monkeypatch):
    """Make the named top-level modules unimportable in this process."""

    def _block(*names: str) -> None:
        for mod in list(sys.modules):
            if mod.split(".")[0] in names:
                monkeypatch.delitem(sys.modules, mod)
        monkeypatch.setattr(sys, "meta_path", [_Block(set(names)), *sys.meta_path])

    return _block


def _run_blocked(blocked: str, *args: str, cwd: Path | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", BLOCKER, blocked, *args], capture_output=True, text=True,
                          timeout=300, cwd=cwd)


def _one_sentence(proc: subprocess.CompletedProcess) -> str:
    assert proc.returncode == 2, proc.stdout + proc.stderr
    err = proc.stderr.strip()
    assert err.startswith("error: ") and len(err.splitlines()) == 1, err
    assert "Traceback" not in proc.stderr
    return err


def test_every_listed_package_is_in_its_extra():
    extras = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["optional-dependencies"]
    for module, opt in EXTRAS.items():
        assert opt.extra in extras, f"{module}: no extra {opt.extra!r} in pyproject.toml"
        names = {r.split(">")[0].split("=")[0].split("[")[0].split("<")[0].strip().lower() for r in extras[opt.extra]}
        assert opt.package.lower() in names, f"{module}: {opt.package} is not in the {opt.extra!r} extra"


def test_require_names_the_extra(block):
    block("Stemmer")
    with pytest.raises(MissingDependencyError, match=r"pip install 'recseek\[lexical\]', or pass stemmer=None"):
        require("Stemmer", purpose="stemming", python="pass stemmer=None", cli="pass --stemmer none")
    with calling_from("cli"), pytest.raises(MissingDependencyError, match="or pass --stemmer none$"):
        require("Stemmer", purpose="stemming", python="pass stemmer=None", cli="pass --stemmer none")


def test_require_returns_the_module():
    assert require("pyarrow.csv").__name__ == "pyarrow.csv"


def test_require_refuses_unlisted_modules():
    with pytest.raises(KeyError):
        require("numpy")


def test_explain_maps_only_optional_modules():
    err = explain(ModuleNotFoundError("No module named 'sqlalchemy.engine'", name="sqlalchemy.engine"))
    assert isinstance(err, MissingDependencyError) and "recseek[serve]" in str(err)
    assert explain(ModuleNotFoundError("No module named 'numpy'", name="numpy")) is None
    assert explain(ImportError("cannot import name x")) is None


def test_missing_import_inside_a_command_is_one_sentence(monkeypatch):
    """A command whose module loads fine but imports an optional package later."""
    import click

    @click.command("late-import")
    def late() -> None:
        raise ModuleNotFoundError("No module named 'fastapi'", name="fastapi")

    monkeypatch.setitem(cli.commands, "late-import", late)
    result = CliRunner().invoke(cli, ["late-import"])
    assert result.exit_code == 2, result.output
    assert result.stderr.strip() == (
        "error: the HTTP server needs fastapi, which is not installed: pip install 'recseek[serve]'")


def test_unknown_missing_module_is_not_hidden(monkeypatch):
    import click

    @click.command("late-import")
    def late() -> None:
        raise ModuleNotFoundError("No module named 'recseek_internal'", name="recseek_internal")

    monkeypatch.setitem(cli.commands, "late-import", late)
    result = CliRunner().invoke(cli, ["late-import"])
    assert isinstance(result.exception, ModuleNotFoundError)


def test_serve_without_fastapi_subprocess():
    err = _one_sentence(_run_blocked("fastapi", "serve"))
    assert "pip install 'recseek[serve]'" in err and "fastapi" in err


def test_retrain_without_sqlalchemy_subprocess(tmp_path):
    cfg = tmp_path / "serve.toml"
    cfg.write_text('[store]\nmodels = "store"\n\n[[models]]\nname = "movies"\n\n[models.retrain]\n'
                   'algorithm = "MostPopular"\ndata = "ratings.csv"\n')
    (tmp_path / "store").mkdir()
    err = _one_sentence(_run_blocked("sqlalchemy", "retrain", "--config", str(cfg), "--model", "movies"))
    assert "pip install 'recseek[serve]'" in err and "sqlalchemy" in err


def test_parquet_without_pyarrow_subprocess(tmp_path):
    pq = tmp_path / "r.parquet"
    pq.write_bytes(b"PAR1" + b"\0" * 16 + b"PAR1")
    err = _one_sentence(_run_blocked("pyarrow", "train", "--model", "MostPopular", "--data", str(pq),
                                     "--out", str(tmp_path / "m")))
    assert "pip install 'recseek[parquet]'" in err


def test_index_without_stemmer_names_the_flag(tmp_path):
    docs = tmp_path / "docs.jsonl"
    docs.write_text('{"id": "1", "text": "running dogs"}\n{"id": "2", "text": "sleeping cats"}\n')
    err = _one_sentence(_run_blocked("Stemmer", "index", str(docs), "--out", str(tmp_path / "idx")))
    assert "pip install 'recseek[lexical]'" in err and "--stemmer none" in err


def test_search_without_numba_or_pandas_subprocess(tmp_path):
    """A BM25-only install (no `models` extra): index and search work, on the numpy kernels."""
    docs = tmp_path / "docs.jsonl"
    docs.write_text('{"id": "1", "text": "wing flutter at supersonic speed"}\n'
                    '{"id": "2", "text": "heat transfer in a boundary layer"}\n'
                    '{"id": "3", "text": "flutter of a panel"}\n')
    idx = tmp_path / "idx"
    built = _run_blocked("numba,llvmlite,pandas", "index", str(docs), "--out", str(idx), "--stemmer", "none")
    assert built.returncode == 0, built.stderr
    found = _run_blocked("numba,llvmlite,pandas", "search", str(idx), "flutter", "-k", "2", "--json")
    assert found.returncode == 0, found.stderr
    assert [h["id"] for h in json.loads(found.stdout)] == ["3", "1"]


def test_models_without_numba_name_the_extra_subprocess():
    err = _one_sentence(_run_blocked("numba,llvmlite", "demo", "--user", "196"))
    assert "pip install 'recseek[models]'" in err and "numba" in err


@pytest.mark.slow
def test_bm25_only_install_is_small_and_searches(tmp_path):
    """`pip install recseek[lexical]` into a fresh venv: under 300 MB, and index + search run."""
    import os
    import shutil

    # The fresh venv must see only what it installed: no search path or interpreter settings
    # inherited from the environment that runs the tests (PYTHONPATH, PYTHONHOME, VIRTUAL_ENV ...).
    env = {k: v for k, v in os.environ.items()
           if not (k.startswith("PYTHON") or k.startswith("PIP_") or k in ("VIRTUAL_ENV", "CONDA_PREFIX"))}
    env["PYTHONNOUSERSITE"] = "1"
    venv = tmp_path / "venv"
    base = getattr(sys, "_base_executable", sys.executable)
    subprocess.run([base, "-m", "venv", str(venv)], check=True, timeout=300, env=env)
    pip = subprocess.run([str(venv / "bin" / "pip"), "install", "-q", "-e", f"{ROOT}[lexical]"],
                         capture_output=True, text=True, timeout=1800, env=env)
    assert pip.returncode == 0, pip.stderr[-2000:]
    site = next((venv / "lib").glob("python3*/site-packages"))
    size = sum(p.stat().st_size for p in site.rglob("*") if p.is_file() and not p.is_symlink())
    installed = {p.name.split("-")[0].lower() for p in site.glob("*.dist-info")}
    assert not installed & {"numba", "llvmlite", "pandas", "torch", "pyarrow"}, installed
    assert size < 300 * 2**20, f"BM25-only install is {size / 2**20:.0f} MB"
    probe = subprocess.run([str(venv / "bin" / "python"), "-c",
                            "import importlib.util, sys; s = importlib.util.find_spec('numba'); "
                            "print(s.origin if s else '', sys.path)"],
                           capture_output=True, text=True, timeout=60, env=env)
    assert probe.stdout.split(" ", 1)[0] == "", f"numba is importable in the fresh venv: {probe.stdout}"
    docs = tmp_path / "docs.jsonl"
    docs.write_text('{"id": "1", "text": "wing flutter at supersonic speeds"}\n'
                    '{"id": "2", "text": "heat transfer in boundary layers"}\n')
    recseek = str(venv / "bin" / "recseek")
    built = subprocess.run([recseek, "index", str(docs), "--out", str(tmp_path / "idx")], capture_output=True,
                           text=True, timeout=300, env=env)
    assert built.returncode == 0, built.stderr
    found = subprocess.run([recseek, "search", str(tmp_path / "idx"), "fluttering wings", "--json"],
                           capture_output=True, text=True, timeout=300, env=env)
    assert found.returncode == 0, found.stderr
    assert [h["id"] for h in json.loads(found.stdout)] == ["1"]  # stemmed: flutter/wing match
    demo = subprocess.run([recseek, "demo"], capture_output=True, text=True, timeout=300, env=env)
    assert demo.returncode == 2 and "pip install 'recseek[models]'" in demo.stderr, demo.stderr
    shutil.rmtree(venv, ignore_errors=True)
