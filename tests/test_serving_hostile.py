"""Hostile and careless clients: each probe of the serving review, with the status it must get."""

from __future__ import annotations

import asyncio
import threading
import time

import pytest

pytest.importorskip("fastapi")
pytest.importorskip("uvicorn")
httpx = pytest.importorskip("httpx")

from recseek.serving.app import create_app  # noqa: E402
from recseek.serving.cli import BackgroundServer  # noqa: E402
from recseek.serving.config import parse_config  # noqa: E402
from test_serving_protocols import build_store  # noqa: E402

TOKEN = "t0ken"


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    return build_store(tmp_path_factory.mktemp("store"))


def _config(store, db, *, token=None, **server):
    return parse_config({"server": {"token": token or "", **server},
                         "store": {"models": str(store), "feedback": f"sqlite:///{db}"},
                         "models": [{"name": "mf", "version": "1"}], "indexes": [{"name": "docs"}]}, store.parent)


@pytest.fixture(scope="module")
def open_server(store, tmp_path_factory):
    """A no-token server on loopback (the mode a web page could reach)."""
    db = tmp_path_factory.mktemp("db") / "f.db"
    with BackgroundServer(create_app(_config(store, db))) as srv, httpx.Client(base_url=srv.url, timeout=30) as c:
        yield srv, c


# ---------------------------------------------------------------- sizes and numbers
def test_users_times_k_is_capped(open_server):
    _, c = open_server
    r = c.post("/recommend/mf", json={"users": [1] * 1000, "k": 1000})
    assert r.status_code == 422 and "at most 100000" in r.json()["message"]
    assert len(r.content) < 1000
    r = c.post("/recommend/mf", json={"users": [1] * 100, "k": 40})
    assert r.status_code == 200 and len(r.json()["results"]) == 100


@pytest.mark.parametrize("path", ["/predictions/mf", "/recommend/mf", "/v2/models/mf/infer", "/search/docs",
                                  "/invocations?model_name=mf"])
def test_deeply_nested_json_is_a_4xx(open_server, path):
    _, c = open_server
    body = b"[" * 50_000 + b"]" * 50_000
    r = c.post(path, content=body, headers={"content-type": "application/json"})
    assert 400 <= r.status_code < 500, (path, r.status_code, r.text[:200])
    nested = b'{"user": ' + b"[" * 50_000 + b"]" * 50_000 + b"}"
    r = c.post(path, content=nested, headers={"content-type": "application/json"})
    assert 400 <= r.status_code < 500, (path, r.status_code, r.text[:200])


def test_oversized_headers_get_431(open_server):
    _, c = open_server
    r = c.get("/ping", headers={"X-Big": "a" * 100_000})
    assert r.status_code == 431 and "65536" in r.json()["message"]
    assert c.get("/ping").status_code == 200


def test_management_numbers_are_bounded_and_answer_at_once(open_server):
    _, c = open_server
    t0 = time.perf_counter()
    for params in ({"min_worker": "72057594037927936"}, {"min_worker": "100000"}, {"max_worker": "100000"},
                   {"batch_size": "100000"}, {"job_queue_size": "10000000000"}, {"max_batch_delay": "1e300"},
                   {"max_idle_time": "nan"}):
        assert c.put("/models/mf", params=params).status_code == 422, params
        assert c.post("/models", params={"url": "pop", **params}).status_code == 422, params
    assert time.perf_counter() - t0 < 10  # nothing was started for any of them
    assert c.get("/models/mf").json()[0]["models"][0]["workerGroups"][0]["minWorkers"] == 1


def test_config_numbers_are_bounded():
    from recseek.errors import ParameterError

    for table in ({"min_worker": 10**6, "max_worker": 10**6}, {"batch_size": 10**5}, {"max_queue": 10**9},
                  {"max_batch_delay_ms": 5000}, {"max_idle_time": 0}):
        with pytest.raises(ParameterError):
            parse_config({"batching": table})


# ---------------------------------------------------------------- queues count requests
def test_queue_counts_requests_and_rejected_requests_run_nothing(store, tmp_path):
    app = create_app(_config(store, tmp_path / "f.db", inline_below_ms=0))
    with BackgroundServer(app) as srv:
        ep = app.state.server.registry.resolve("mf")
        executed: list[int] = []
        gate = threading.Event()
        original = ep.batcher.execute

        def slow(jobs):
            executed.extend(j.payload["user"] for j in jobs)
            gate.wait(10)
            return original(jobs)

        ep.batcher.execute = slow
        from recseek.serving.config import BatchSettings

        ep.batcher.rescale(BatchSettings(batch_size=1000, max_batch_delay_ms=0, max_queue=2))

        async def scenario():
            async with httpx.AsyncClient(base_url=srv.url, timeout=30) as ac:
                many = asyncio.create_task(ac.post("/recommend/mf", json={"users": list(range(50)), "k": 3}))
                await asyncio.sleep(0.3)  # its 50 jobs hold one place
                other = asyncio.create_task(ac.get("/recommend/mf", params={"user": 1}))
                await asyncio.sleep(0.3)  # two requests held: the queue is full
                rejected = await ac.post("/recommend/mf", json={"users": [5, 6, 7], "k": 3})
                gate.set()
                return await many, await other, rejected

        many, other, rejected = asyncio.run(scenario())
        assert many.status_code == 200 and len(many.json()["results"]) == 50
        assert other.status_code == 200
        assert rejected.status_code == 503 and rejected.headers["retry-after"] == "1"
        assert not {5, 6, 7} & set(executed) - set(range(50))  # the rejected request's jobs never ran
        assert executed.count(7) == 1  # user 7 ran once: within the first request only
        assert ep.batcher.requests == 0 and ep.batcher.queue_depth == 0


# ---------------------------------------------------------------- browsers and DNS rebinding
def test_no_token_mode_answers_loopback_host_names_only(open_server):
    srv, c = open_server
    for host in ("evil.example", "evil.example:8080", "10.0.0.1", "localhost.evil.example"):
        r = c.get("/models", headers={"Host": host})
        assert r.status_code == 403 and "loopback" in r.json()["message"], host
        assert c.get("/recommend/mf", params={"user": 1}, headers={"Host": host}).status_code == 403
    for host in (f"localhost:{srv.port}", f"127.0.0.1:{srv.port}", "[::1]", "localhost"):
        assert c.get("/ping", headers={"Host": host}).status_code == 200, host


def test_cross_site_posts_cannot_change_state(open_server):
    srv, c = open_server
    simple = {"Origin": "http://evil.example", "Content-Type": "text/plain"}
    for method, path in [("post", "/models?url=pop"), ("post", "/models/mf/retrain"), ("delete", "/models/mf"),
                         ("put", "/models/mf?min_worker=2"), ("post", "/feedback"), ("post", "/workflows?url=pop")]:
        r = c.request(method.upper(), path, headers=simple, content=b'{"user": 1, "item": 2}')
        assert r.status_code == 403, (method, path, r.text)
    r = c.post("/models?url=pop", headers={"Sec-Fetch-Site": "cross-site"})
    assert r.status_code == 403
    # same origin without JSON or the custom header: still refused
    same = {"Origin": f"http://127.0.0.1:{srv.port}", "Content-Type": "application/x-www-form-urlencoded"}
    assert c.post("/feedback", headers=same, content=b"user=1&item=2").status_code == 403
    # same origin with JSON, or with the custom header, and non-browser clients: allowed
    r = c.post("/feedback", json={"user": 1, "item": 2}, headers={"Origin": f"http://127.0.0.1:{srv.port}"})
    assert r.status_code == 200
    assert c.get("/models").status_code == 200
    assert c.put("/models/mf?min_worker=1", headers={"X-Recseek-Client": "1", "Origin":
                                                     f"http://127.0.0.1:{srv.port}"}).status_code == 200
    assert c.put("/models/mf?min_worker=1").status_code == 200  # curl-like
    # inference stays open to pages (read-only)
    assert c.post("/predictions/mf", json={"user": 1}, headers={"Origin": "http://evil.example"}).status_code == 200


def test_token_mode_checks_the_token_not_the_host(store, tmp_path):
    app = create_app(_config(store, tmp_path / "f.db", token=TOKEN))
    with BackgroundServer(app) as srv, httpx.Client(base_url=srv.url, timeout=30) as c:
        auth = {"Authorization": f"Bearer {TOKEN}"}
        assert c.get("/models", headers={**auth, "Host": "recs.example"}).status_code == 200
        assert c.get("/models", headers={"Host": "recs.example"}).status_code == 401


# ---------------------------------------------------------------- feedback
@pytest.mark.parametrize("body", [
    {"user": 1, "item": 2, "value": 1e308}, {"user": 1, "item": 2, "value": -1e7},
    {"user": True, "item": 2}, {"user": 1, "item": False}, {"user": 1, "item": 2, "timestamp": True},
    {"user": 1, "item": 2, "value": True}, {"user": 1, "item": 2, "timestamp": -5},
    {"user": 1, "item": 2, "timestamp": 1e300}, {"user": 1.5, "item": 2}, {"user": [1], "item": 2},
    {"events": [{"user": 1, "item": 2, "value": 1e308}]},
])
def test_feedback_values_and_types_are_strict(open_server, body):
    _, c = open_server
    r = c.post("/feedback", json=body)
    assert r.status_code == 422, (body, r.text)


def test_operators_list_and_delete_stored_events(open_server):
    _, c = open_server
    c.delete("/feedback", params={"user": "listed"})
    assert c.post("/feedback", json={"events": [{"user": "listed", "item": i, "value": 2.0} for i in range(5)]}
                  ).json() == {"stored": 5}
    page = c.get("/feedback", params={"user": "listed", "limit": 3}).json()
    assert [e["item"] for e in page["events"]] == ["0", "1", "2"] and page["nextPageToken"]
    rest = c.get("/feedback", params={"user": "listed", "next_page_token": page["nextPageToken"]}).json()
    assert [e["item"] for e in rest["events"]] == ["3", "4"] and "nextPageToken" not in rest
    first = page["events"][0]["id"]
    assert c.delete(f"/feedback/{first}").json() == {"deleted": 1}
    assert c.delete(f"/feedback/{first}").status_code == 404
    assert c.delete("/feedback", params={"user": "listed"}).json() == {"deleted": 4}
    assert c.get("/feedback", params={"user": "listed"}).json()["events"] == []
    assert c.get("/feedback", params={"colour": 1}).status_code == 422
    assert c.get("/feedback", params={"next_page_token": "x"}).status_code == 422


# ---------------------------------------------------------------- the store
def test_bad_symlink_as_newest_version_is_skipped(store, tmp_path):
    import shutil

    root = tmp_path / "store"
    shutil.copytree(store / "mf" / "1", root / "mf" / "1")
    shutil.copytree(store / "docs" / "1", root / "docs" / "1")
    (root / "mf" / "9").symlink_to(tmp_path / "nowhere", target_is_directory=True)
    outside = tmp_path / "outside"
    shutil.copytree(store / "mf" / "2", outside)
    (root / "mf" / "10").symlink_to(outside, target_is_directory=True)
    cfg = parse_config({"store": {"models": str(root), "feedback": f"sqlite:///{tmp_path / 'f.db'}"},
                        "models": [{"name": "mf"}], "indexes": [{"name": "docs"}]}, tmp_path)
    with BackgroundServer(create_app(cfg)) as srv, httpx.Client(base_url=srv.url, timeout=30) as c:
        assert c.get("/recommend/mf", params={"user": 1}).json()["version"] == "1"
        r = c.post("/models", params={"url": "mf/9"})
        assert r.status_code == 404
        r = c.post("/models", params={"url": "mf/10"})
        assert r.status_code == 422 and "outside the model store" in r.json()["message"]
        r = c.post("/models", params={"url": "mf/77"})
        assert r.status_code == 404 and str(root) not in r.text and "the model store has no" in r.text


def test_every_version_is_warmed_before_it_serves(store, tmp_path, monkeypatch):
    from recseek.serving import servables

    warmed: list[tuple[str, str]] = []
    for cls in (servables.ModelServable, servables.IndexServable):
        original = cls.warm

        def spy(self, _original=original):
            warmed.append((self.name, self.version))
            return _original(self)

        monkeypatch.setattr(cls, "warm", spy)
    with BackgroundServer(create_app(_config(store, tmp_path / "f.db"))) as srv, \
            httpx.Client(base_url=srv.url, timeout=30) as c:
        assert sorted(warmed) == [("docs", "1"), ("mf", "1")]
        c.post("/models", params={"url": "mf/2"})
        assert ("mf", "2") in warmed
