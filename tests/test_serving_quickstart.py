"""The README's "Serve it" steps, run as a user runs them: ``recseek`` in a subprocess, then HTTP calls."""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

httpx = pytest.importorskip("httpx")
pytest.importorskip("fastapi")
pytest.importorskip("uvicorn")

README = Path(__file__).resolve().parents[1] / "README.md"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _serve_it_block() -> str:
    """The bash block of README's "Serve it" part."""
    text = README.read_text(encoding="utf-8")
    part = text[text.index("### Serve it"):]
    return re.search(r"```bash\n(.*?)```", part, re.S).group(1)


def _recseek(*args: str, env: dict[str, str], cwd: Path | None = None) -> subprocess.Popen:
    # cwd: where the server keeps its default feedback database (never the checkout)
    return subprocess.Popen([sys.executable, "-m", "recseek", *args], env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True, cwd=cwd)


def _wait(url: str, proc: subprocess.Popen, timeout: float = 300) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            pytest.fail(f"the server exited with {proc.returncode}:\n{proc.stdout.read()[-3000:]}")
        try:
            if httpx.get(url + "/ping", timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.25)
    proc.kill()
    pytest.fail(f"the server did not answer within {timeout:.0f} s")


def _stop(proc: subprocess.Popen) -> str:
    proc.terminate()
    try:
        out, _ = proc.communicate(timeout=30)
    except subprocess.TimeoutExpired:
        proc.kill()
        out, _ = proc.communicate()
    return out


@pytest.fixture
def env(tmp_path):
    """A user with an empty home (ML-100K still comes from the shared cache when it has one)."""
    home = tmp_path / "home"
    home.mkdir()
    out = {**os.environ, "HOME": str(home)}
    out.setdefault("RECSEEK_DATA", str(Path.home() / ".cache" / "recseek"))
    return out


def test_readme_serve_it_steps_work_as_written(tmp_path, env):
    block = _serve_it_block()
    assert "recseek serve --demo" in block and "curl" in block
    commands = [line.strip() for line in block.splitlines() if line.strip() and not line.startswith("#")]
    serve = next(c for c in commands if "recseek serve --demo" in c)
    curls = [c for c in commands if c.startswith("curl ")]
    assert curls, block
    port = _free_port()
    args = serve.split("recseek", 1)[1].replace("&", "").split()
    proc = _recseek(*args, "--demo-dir", str(tmp_path / "demo"), "--port", str(port), env=env)
    try:
        _wait(f"http://127.0.0.1:{port}", proc)
        for c in curls:
            url = re.search(r'"(http[^"]+)"', c).group(1).replace("8080", str(port))
            r = httpx.get(url, timeout=30)
            assert r.status_code == 200, (c, r.text)
            body = r.json()
            items = body["items"]
            assert body["model"] == "movies" and len(items) == 5
            assert all(isinstance(x["title"], str) and x["title"] for x in items), items
        # genres saved with the model make filters work without an item_data file
        r = httpx.get(f"http://127.0.0.1:{port}/recommend/movies", params={"user": 196, "k": 5,
                                                                          "filter": "genres:Comedy"})
        assert r.status_code == 200 and len(r.json()["items"]) == 5
    finally:
        out = _stop(proc)
    assert "Traceback" not in out, out[-3000:]


def test_serve_a_store_written_by_recseek_run(tmp_path, env):
    exp = tmp_path / "exp.toml"
    exp.write_text('[data]\nname = "ml-100k"\nmin_rating = 4\nbinarize = true\n\n'
                   '[split]\nmethod = "random"\nratio = 0.8\nseed = 0\n\n'
                   '[evaluation]\ntask = "ranking"\nk = 10\nmetrics = ["ndcg"]\n\n'
                   '[[models]]\nname = "MostPopular"\n\n[[models]]\nname = "EASE"\n')
    store = tmp_path / "store"
    run = subprocess.run([sys.executable, "-m", "recseek", "run", str(exp), "--save-dir", str(store)], env=env,
                         capture_output=True, text=True, timeout=600)
    assert run.returncode == 0, run.stdout + run.stderr
    port = _free_port()
    proc = _recseek("serve", "--store", str(store), "--port", str(port), env=env, cwd=store.parent)
    try:
        url = f"http://127.0.0.1:{port}"
        _wait(url, proc)
        listed = httpx.get(f"{url}/models").json()["models"]
        assert {m["modelName"] for m in listed} == {"MostPopular", "EASE"}
        assert all(m["status"] == "READY" for m in listed)
        r = httpx.get(f"{url}/recommend/EASE", params={"user": 196, "k": 3})
        assert r.status_code == 200 and len(r.json()["items"]) == 3
    finally:
        _stop(proc)


@pytest.mark.parametrize(("args", "text"), [
    (["--store", "{tmp}/nowhere"], "no such folder"),
    (["--store", "{tmp}"], "holds no model folders"),
    (["--demo", "--store", "{tmp}"], "not both"),
])
def test_serve_start_up_mistakes_are_one_sentence(tmp_path, env, args, text):
    args = [a.format(tmp=tmp_path) for a in args]
    res = subprocess.run([sys.executable, "-m", "recseek", "serve", *args], env=env, capture_output=True, text=True,
                         timeout=120)
    assert res.returncode == 2, res.stdout + res.stderr
    assert res.stderr.strip().splitlines()[-1].startswith("error: ") and text in res.stderr
    assert "Traceback" not in res.stderr


def test_the_serving_example_runs_as_its_comment_says(tmp_path, env):
    """examples/serve.toml: the `recseek train` line in its header builds the store it serves."""
    example = README.parent / "examples" / "serve.toml"
    text = example.read_text()
    (tmp_path / "serve.toml").write_text(text)
    train = next(line.lstrip("# ").strip() for line in text.splitlines() if line.lstrip("# ").startswith("recseek train"))
    args = train.split()[1:]
    args[args.index("--out") + 1] = str(tmp_path / "model-store" / "movies")  # the store beside the copied file
    run = subprocess.run([sys.executable, "-m", "recseek", *args], env=env, capture_output=True, text=True,
                         timeout=600, cwd=tmp_path)
    assert run.returncode == 0, run.stdout + run.stderr
    from recseek.serving.app import create_app
    from recseek.serving.cli import BackgroundServer
    from recseek.serving.config import load_config

    cfg = load_config(tmp_path / "serve.toml", env={})
    with BackgroundServer(create_app(cfg)) as srv:
        r = httpx.get(f"{srv.url}/recommend/movies", params={"user": 196, "k": 3}, timeout=60)
        assert r.status_code == 200, r.text
        items = r.json()["items"]
        assert len(items) == 3 and all(isinstance(x["title"], str) and x["title"] for x in items), items
