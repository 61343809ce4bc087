"""Corrupt files in the model store: one clear 4xx per version, the other versions keep serving."""

from __future__ import annotations

import shutil

import pytest

pytest.importorskip("fastapi")
pytest.importorskip("uvicorn")
httpx = pytest.importorskip("httpx")

from recseek.serving.app import create_app  # noqa: E402
from recseek.serving.cli import BackgroundServer  # noqa: E402
from recseek.serving.config import parse_config  # noqa: E402
from test_serving_protocols import build_store  # noqa: E402


def flip(path, offset=None, n=16):
    """Invert ``n`` bytes of ``path`` in place (at its middle by default)."""
    raw = bytearray(path.read_bytes())
    start = max(0, len(raw) // 2 - n // 2) if offset is None else offset
    for i in range(start, min(len(raw), start + n)):
        raw[i] ^= 0xFF
    path.write_bytes(bytes(raw))


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    root = build_store(tmp_path_factory.mktemp("store"))
    shutil.copytree(root / "mf" / "1", root / "badmodel" / "1")
    flip(root / "badmodel" / "1" / "arrays.npz")
    shutil.copytree(root / "docs" / "1", root / "badindex" / "1")
    flip(root / "badindex" / "1" / "seg0.impacts.npy")
    return root


@pytest.fixture(scope="module")
def server(store, tmp_path_factory):
    db = tmp_path_factory.mktemp("db") / "f.db"
    cfg = parse_config({"store": {"models": str(store), "feedback": f"sqlite:///{db}"},
                        "models": [{"name": "mf", "version": "1"}, {"name": "badmodel"}],
                        "indexes": [{"name": "docs"}, {"name": "badindex"}]}, store.parent)
    with BackgroundServer(create_app(cfg)) as srv, httpx.Client(base_url=srv.url, timeout=30) as c:
        yield srv, c


def test_corrupt_versions_are_skipped_at_start_and_shown_failed(server, store):
    _, c = server
    listed = {m["modelName"]: m for m in c.get("/models").json()["models"]}
    assert {n: m["status"] for n, m in listed.items()} == {"mf": "READY", "docs": "READY", "badmodel": "FAILED",
                                                            "badindex": "FAILED"}
    for name in ("badmodel", "badindex"):
        msg = listed[name]["message"]
        assert "checksum" in msg and str(store) not in msg, msg
        desc = c.get(f"/models/{name}").json()[0]["models"][0]
        assert desc["status"] == "Failed" and "checksum" in desc["message"]
    assert c.get("/ping").json()["models"]["badmodel/1"] == "FAILED"
    # the others serve
    assert c.get("/recommend/mf", params={"user": 1}).status_code == 200
    assert c.post("/search/docs", json={"query": "robot"}).status_code == 200
    r = c.get("/recommend/badmodel", params={"user": 1})
    assert r.status_code == 404
    r = c.post("/v2/models/badindex/infer", json={"inputs": [{"name": "query", "shape": [1], "datatype": "BYTES",
                                                              "data": ["robot"]}]})
    assert r.status_code == 404


@pytest.mark.parametrize("bundle", ["mf/1", "docs/1"])
def test_flipping_bytes_in_any_file_gives_one_clear_4xx(server, store, bundle):
    """Every file of a model and of an index, flipped in turn, and registered over HTTP."""
    _, c = server
    name, version = bundle.split("/")
    files = sorted(p.name for p in (store / name / version).iterdir() if p.is_file())
    assert len(files) >= 3
    for n, fname in enumerate(files):
        target = f"flip{name}{n}"
        shutil.copytree(store / name / version, store / target / "1")
        flip(store / target / "1" / fname)
        r = c.post("/models", params={"url": f"{target}/1"})
        assert 400 <= r.status_code < 500, (fname, r.status_code, r.text)
        body = r.json()
        assert body["message"] and "\n" not in body["message"] and "Traceback" not in body["message"], body
        assert str(store) not in body["message"], body
        listed = {m["modelName"]: m["status"] for m in c.get("/models").json()["models"]}
        assert listed[target] == "FAILED", fname
        assert c.delete(f"/models/{target}").json()["versions"] == ["1"]
    assert c.get("/recommend/mf", params={"user": 1}).status_code == 200
    assert c.post("/search/docs", json={"query": "robot"}).status_code == 200


def test_registering_a_corrupt_version_is_a_4xx_and_the_good_one_still_registers(server, store):
    _, c = server
    r = c.post("/models", params={"url": "badmodel/1"})
    assert r.status_code == 422 and "checksum" in r.json()["message"]
    shutil.copytree(store / "mf" / "2", store / "badmodel" / "2")
    r = c.post("/models", params={"url": "badmodel/2"})
    assert r.status_code == 200
    assert c.get("/recommend/badmodel", params={"user": 1}).json()["version"] == "2"
