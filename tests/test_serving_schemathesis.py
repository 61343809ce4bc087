"""The server's OpenAPI document is its contract: Schemathesis generates requests for every
operation from it (valid and invalid ones) and checks every response against it: no 5xx,
only documented status codes, content types and headers, bodies matching the response
schemas, valid requests accepted and schema-violating ones rejected."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("fastapi")
pytest.importorskip("schemathesis", reason="the dev extra installs Schemathesis")

from recseek.serving.app import create_app  # noqa: E402
from recseek.serving.cli import BackgroundServer  # noqa: E402
from recseek.serving.config import parse_config  # noqa: E402
from test_serving_protocols import build_store  # noqa: E402

TOKEN = "contract-t0ken"


def _schemathesis() -> str:
    exe = Path(sys.executable).with_name("schemathesis")
    return str(exe) if exe.exists() else (shutil.which("schemathesis") or "schemathesis")


@pytest.mark.slow
def test_every_operation_keeps_its_contract(tmp_path: Path) -> None:
    store = build_store(tmp_path / "store")
    cfg = parse_config({"server": {"token": TOKEN},
                        "store": {"models": str(store), "feedback": f"sqlite:///{tmp_path / 'f.db'}"},
                        "models": [{"name": "mf", "version": "1"}], "indexes": [{"name": "docs"}]}, store.parent)
    with BackgroundServer(create_app(cfg)) as srv:
        run = subprocess.run(
            [_schemathesis(), "--config-file", str(Path(__file__).with_name("schemathesis.toml")), "run",
             f"{srv.url}/openapi.json", "--max-examples", "12",
             "--seed", "0", "--generation-deterministic", "--phases", "examples,coverage,fuzzing",
             "-H", f"Authorization: Bearer {TOKEN}", "--request-timeout", "30", "--no-color"],
            capture_output=True, text=True, timeout=1200)
    assert run.returncode == 0, run.stdout[-8000:] + run.stderr[-2000:]
