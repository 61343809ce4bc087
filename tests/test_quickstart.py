"""README's quick start, run as written: the commands are parsed out of README.md."""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
RECSEEK = ".venv/bin/recseek"


def _block(heading: str) -> list[str]:
    """The command lines of the first bash block after ``heading`` in README.md."""
    text = README.read_text(encoding="utf-8")
    assert heading in text, f"README.md has no {heading!r} part"
    part = text[text.index(heading):]
    block = re.search(r"```bash\n(.*?)```", part, re.S)
    assert block is not None, f"no bash block after {heading!r}"
    return [line for line in block.group(1).splitlines() if line.strip() and not line.lstrip().startswith("#")]


def _recseek_steps(line: str) -> list[list[str]]:
    """The ``recseek`` invocations of one command line (steps joined by ``&&``)."""
    steps = []
    for step in line.split("&&"):
        words = shlex.split(step)
        if words and words[0] == RECSEEK:
            steps.append(words[1:])
    return steps


def _run(args: list[str], cwd: Path, env: dict[str, str]) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "recseek", *args], cwd=cwd, env=env, capture_output=True,
                          text=True, timeout=900)


@pytest.fixture
def user(tmp_path) -> tuple[Path, dict[str, str]]:
    """A clone's folder (its examples) and a user with an empty home directory."""
    clone = tmp_path / "clone"
    clone.mkdir()
    (clone / "examples").symlink_to(ROOT / "examples", target_is_directory=True)
    home = tmp_path / "home"
    home.mkdir()
    env = {**os.environ, "HOME": str(home)}
    env.setdefault("RECSEEK_DATA", str(Path.home() / ".cache" / "recseek"))  # ML-100K downloaded once
    return clone, env


def test_save_steps_run_as_written(user):
    clone, env = user
    lines = _block("### Save a model and recommend from it")
    steps = [s for line in lines for s in _recseek_steps(line)]
    assert len(steps) == len(lines) >= 4, "every line of the block is one recseek command"
    outputs = []
    for args in steps:
        proc = _run(args, clone, env)
        assert proc.returncode == 0, f"recseek {' '.join(args)} failed:\n{proc.stderr[-3000:]}"
        outputs.append(proc.stdout)
        if args[0] == "recommend":
            table = [line for line in proc.stdout.splitlines() if line.strip()]
            assert table[0].split() == ["rank", "item", "score", "title", "genres"], proc.stdout
            rows = table[2:]
            k = int(args[args.index("-k") + 1])
            assert len(rows) == k
            assert all(len(r.split()) >= 5 for r in rows), "every item has a title and genres"
            assert (clone / args[1] / "item_data.json").is_file()
    # the documented folders exist: one version per saved model
    for args in steps:
        if args[0] == "recommend":
            assert (clone / args[1] / "manifest.json").is_file()
    assert "saved EASE to store/EASE/1" in outputs[0]


@pytest.mark.slow
def test_demo_line_runs_as_written(user):
    clone, env = user
    demo = next(line for line in _block("## Quick start") if "recseek demo" in line)
    (args,) = _recseek_steps(demo)
    proc = _run(args, clone, env)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "compile s" in proc.stdout and "(best NDCG@10)" in proc.stdout
