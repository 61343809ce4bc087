"""HTTP serving: every route against a real server on an ephemeral loopback port."""

from __future__ import annotations

import asyncio
import json
import threading
import time
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("fastapi")
pytest.importorskip("uvicorn")
httpx = pytest.importorskip("httpx")

from recseek.errors import ParameterError, RecseekError  # noqa: E402
from recseek.models import registry as models  # noqa: E402
from recseek.serving.app import create_app  # noqa: E402
from recseek.serving.batching import Batcher, Overloaded, RequestTimeout  # noqa: E402
from recseek.serving.cli import BackgroundServer  # noqa: E402
from recseek.serving.config import BatchSettings, ServeConfig, load_config, parse_config  # noqa: E402
from recseek.serving.metrics import Metrics  # noqa: E402
from recseek.serving.registry import ModelStore  # noqa: E402
from recseek.testing.fixtures import synthetic  # noqa: E402

TOKEN = "s3cret-token"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
GENRES = ["Comedy", "Drama", "Action"]


# ---------------------------------------------------------------- fixtures
@pytest.fixture(scope="module")
def data():
    return synthetic(60, 40, seed=3)


@pytest.fixture(scope="module")
def store(tmp_path_factory, data):
    """A model store with BiasedMF v1/v2, MostPopular v1 and a BM25 index, plus item data."""
    root = tmp_path_factory.mktemp("store")
    for name in ("mf", "pop", "docs"):
        (root / name).mkdir()
    models.create("BiasedMF", factors=8, epochs=10, seed=0).fit(data).save(root / "mf" / "1")
    models.create("BiasedMF", factors=8, epochs=10, seed=1).fit(data).save(root / "mf" / "2")
    models.create("MostPopular").fit(data).save(root / "pop" / "1")
    from recseek.search.lexical import BM25

    words = ["space", "love", "war", "ocean", "robot"]
    docs = [{"id": str(i), "title": f"{words[i % 5]} story number {i} {GENRES[i % 3].lower()}",
             "genre": GENRES[i % 3], "year": 1990 + i} for i in range(40)]
    bm = BM25(fields=["title"])
    bm.index(docs)
    bm.save(root / "docs" / "1")
    items = root.parent / f"{root.name}-items.tsv"
    lines = ["item_id:token\tgenre:token_seq"] + [f"{i}\t{GENRES[i % 3]} Any" for i in range(40)]
    items.write_text("\n".join(lines) + "\n")
    inter = root.parent / f"{root.name}-base.inter"
    m = data.matrix.tocoo()
    rows = [f"{data.users.ids[u]}\t{data.items.ids[i]}\t{v}\t{t}"
            for u, i, v, t in zip(m.row, m.col, m.data, data.timestamps, strict=True)]
    inter.write_text("user_id:token\titem_id:token\trating:float\ttimestamp:float\n" + "\n".join(rows) + "\n")
    return root, items


def make_config(store, db: Path, *, token: str | None = TOKEN, **server) -> ServeConfig:
    root, items = store
    base = root.parent / f"{root.name}-base.inter"
    raw = {
        "server": {"token": token or "", **server},
        "store": {"models": str(root), "feedback": f"sqlite:///{db}"},
        "batching": {"batch_size": 16, "max_batch_delay_ms": 2},
        "models": [
            {"name": "mf", "version": "1", "item_data": str(items),
             "retrain": {"algorithm": "BiasedMF", "params": {"factors": 8, "epochs": 5}, "min_events": 1,
                         "data": str(base)}},
            {"name": "pop"},
        ],
        "indexes": [{"name": "docs", "personalize": "mf"}],
    }
    return parse_config(raw, root.parent, "test.toml")


@pytest.fixture(scope="module")
def live(store, tmp_path_factory):
    db = tmp_path_factory.mktemp("db") / "feedback.db"
    with BackgroundServer(create_app(make_config(store, db))) as srv, httpx.Client(base_url=srv.url,
                                                                                     timeout=60) as client:
        yield srv, client


@pytest.fixture
def fresh(store, tmp_path):
    """A server of its own (for tests that change registrations)."""
    app = create_app(make_config(store, tmp_path / "feedback.db"))
    with BackgroundServer(app) as srv, httpx.Client(base_url=srv.url, timeout=60, headers=AUTH) as client:
        yield srv, client, app


def _model(store, version="1"):
    from recseek.models.base import Recommender

    return Recommender.load(store[0] / "mf" / version)


# ---------------------------------------------------------------- health, docs, metrics
def test_health_and_docs(live):
    _, c = live
    assert c.get("/ping").json() == {"health": "healthy!",
                                     "models": {"docs/1": "READY", "mf/1": "READY", "pop/1": "READY"}}
    assert c.get("/v2/health/live").json() == {"live": True}
    r = c.get("/v2/health/ready")
    assert r.status_code == 200 and r.json() == {"ready": True}
    spec = c.get("/openapi.json").json()
    for path in ("/recommend/{model}", "/similar-items/{model}", "/predict-rating/{model}", "/search/{index}",
                 "/predictions/{model}", "/predictions/{model}/{version}", "/feedback", "/models",
                 "/models/{name}", "/models/{name}/{version}/set-default", "/metrics", "/ping"):
        assert path in spec["paths"], path
    assert c.get("/docs").status_code == 200
    assert c.get("/nope").status_code == 404


def test_metrics_exposition(live):
    _, c = live
    c.get("/recommend/mf", params={"user": 0})
    c.get("/recommend/mf", params={"user": "nobody"})
    text = c.get("/metrics").text
    assert 'recseek_request_duration_seconds_bucket{route="/recommend/{model}",method="GET",le="+Inf"}' in text
    assert 'recseek_responses_total{route="/recommend/{model}",status="404"}' in text
    assert 'recseek_batch_size_count{model="mf",version="1"}' in text
    assert 'recseek_queue_time_seconds_count{model="mf",version="1"}' in text
    assert 'recseek_queue_depth{model="mf",version="1"} 0' in text


# ---------------------------------------------------------------- recommend
def test_recommend_matches_model(live, store, data):
    _, c = live
    model = _model(store)
    r = c.get("/recommend/mf", params={"user": 5, "k": 7})
    assert r.status_code == 200
    body = r.json()
    assert body["model"] == "mf" and body["version"] == "1"
    got = [x["item"] for x in body["items"]]
    expected = model.recommend([model.users_.index(5)], 7)
    assert got == model.items_.lookup(expected.ids[0]).tolist()
    np.testing.assert_allclose([x["score"] for x in body["items"]], expected.scores[0], rtol=1e-6)
    seen = set(model.items_.lookup(model.seen_[[model.users_.index(5)]].indices).tolist())
    assert not seen & set(got)
    # exclude_seen=false may return training items, exclusions and filters apply
    r2 = c.get("/recommend/mf", params={"user": 5, "k": 40, "exclude_seen": "false"}).json()
    assert len(r2["items"]) == 40
    r3 = c.get("/recommend/mf", params={"user": 5, "k": 5, "exclude": f"{got[0]},{got[1]}"}).json()
    assert got[0] not in [x["item"] for x in r3["items"]] and got[1] not in [x["item"] for x in r3["items"]]
    r4 = c.get("/recommend/mf", params={"user": 5, "k": 10, "filter": "genre:Drama"}).json()
    assert r4["items"] and all(x["item"] % 3 == 1 for x in r4["items"])
    r5 = c.get("/recommend/mf", params={"user": 5, "k": 3, "version": "1"}).json()
    assert [x["item"] for x in r5["items"]] == got[:3]


def test_recommend_batch_post_equals_get(live):
    _, c = live
    r = c.post("/recommend/mf", json={"users": [1, 2, 3], "k": 4})
    assert r.status_code == 200
    results = r.json()["results"]
    for res in results:
        single = c.get("/recommend/mf", params={"user": res["user"], "k": 4}).json()
        assert single["items"] == res["items"]
    r = c.post("/recommend/mf", json={"users": [1], "k": 5, "filter": {"genre": ["Comedy", "Action"]},
                                      "exclude": [0, 3]})
    items = [x["item"] for x in r.json()["results"][0]["items"]]
    assert items and all(i % 3 in (0, 2) for i in items) and 0 not in items and 3 not in items


@pytest.mark.parametrize(("params", "status", "text"), [
    ({"user": "ghost"}, 404, "unknown user 'ghost'"),
    ({"user": 1, "k": 0}, 422, "k"),
    ({"user": 1, "k": "ten"}, 422, "k"),
    ({}, 422, "user"),
    ({"user": 1, "version": "9"}, 404, "no registered version '9'"),
    ({"user": 1, "filter": "genre"}, 422, "field:value"),
    ({"user": 1, "filter": "colour:red"}, 422, "unknown item field 'colour'"),
])
def test_recommend_bad_input(live, params, status, text):
    _, c = live
    r = c.get("/recommend/mf", params=params)
    assert r.status_code == status, r.text
    assert text in r.json()["message"]


def test_unknown_model_and_wrong_kind(live):
    _, c = live
    r = c.get("/recommend/nothing", params={"user": 1})
    assert r.status_code == 404 and "no model named 'nothing'" in r.json()["message"]
    r = c.get("/recommend/docs", params={"user": 1})
    assert r.status_code == 404 and "search index, not a model" in r.json()["message"]
    r = c.post("/search/mf", json={"query": "space"})
    assert r.status_code == 404 and "a model, not a search index" in r.json()["message"]


def test_recommend_post_bad_bodies(live):
    _, c = live
    assert c.post("/recommend/mf", json={"users": []}).status_code == 422
    r = c.post("/recommend/mf", json={"users": [1], "colour": "red"})
    assert r.status_code == 422 and "colour" in r.json()["message"]
    r = c.post("/recommend/mf", content=b"{not json", headers={"content-type": "application/json"})
    assert r.status_code == 422
    r = c.post("/recommend/mf", json={"users": [1, "ghost"]})
    assert r.status_code == 404 and "ghost" in r.json()["message"]
    r = c.post("/recommend/mf", json={"users": [1], "filter": {"genre": [{"x": 1}]}})
    assert r.status_code == 422


# ---------------------------------------------------------------- similar items, ratings
def test_similar_items(live, store):
    _, c = live
    model = _model(store)
    r = c.get("/similar-items/mf", params={"item": 4, "k": 5})
    assert r.status_code == 200
    expected = model.similar_items([model.items_.index(4)], 5)
    assert [x["item"] for x in r.json()["items"]] == model.items_.lookup(expected.ids[0]).tolist()
    assert c.get("/similar-items/mf", params={"item": 999}).status_code == 404
    r = c.get("/similar-items/pop", params={"item": 4})
    assert r.status_code == 400 and "MostPopular" in r.json()["message"]


def test_predict_rating(live, store):
    _, c = live
    model = _model(store)
    r = c.post("/predict-rating/mf", json={"user": 3, "items": [0, 1, 2]})
    assert r.status_code == 200
    got = [p["rating"] for p in r.json()["predictions"]]
    u = model.users_.index(3)
    expected = model.predict(np.full(3, u), model.items_.indices([0, 1, 2]))
    np.testing.assert_allclose(got, expected, rtol=1e-6)
    r = c.post("/predict-rating/mf", json={"pairs": [{"user": 3, "item": 0}, {"user": 4, "item": 1}]})
    assert [p["user"] for p in r.json()["predictions"]] == [3, 4]
    assert c.post("/predict-rating/mf", json={"user": "ghost", "items": [0]}).status_code == 404
    assert c.post("/predict-rating/mf", json={"user": 3, "items": [999]}).status_code == 404
    assert c.post("/predict-rating/mf", json={"user": 3}).status_code == 422
    assert c.post("/predict-rating/mf", json={"user": 3, "items": [0], "pairs": []}).status_code == 422
    r = c.post("/predict-rating/pop", json={"user": 3, "items": [0]})
    assert r.status_code == 400 and "does not predict ratings" in r.json()["message"]


# ---------------------------------------------------------------- search
def test_search(live, store):
    _, c = live
    r = c.post("/search/docs", json={"query": "robot story", "k": 5})
    assert r.status_code == 200
    hits = r.json()["hits"]
    assert len(hits) == 5 and all(int(h["id"]) % 5 == 4 for h in hits)
    r = c.post("/search/docs", json={"query": "robot", "k": 10, "filter": {"genre": "Comedy"}})
    assert all(int(h["id"]) % 3 == 0 for h in r.json()["hits"])
    r = c.post("/search/docs", json={"query": "robot", "k": 10, "filter": {"year": {"gte": 2020}}})
    assert all(1990 + int(h["id"]) >= 2020 for h in r.json()["hits"])
    # personalised: the same candidates, re-ordered by the user's model scores
    plain = c.post("/search/docs", json={"query": "story", "k": 40}).json()["hits"]
    personal = c.post("/search/docs", json={"query": "story", "k": 40, "user": 2, "personalization": 1.0}).json()
    model = _model(store)
    scores = model.score([model.users_.index(2)], model.items_.indices([int(h["id"]) for h in personal["hits"]]))[0]
    assert sorted(h["id"] for h in plain) == sorted(h["id"] for h in personal["hits"])
    assert np.all(np.diff(scores) <= 1e-6)
    for body, status in [({"query": ""}, 422), ({"query": "x", "k": 0}, 422), ({"query": "x", "hybrid": True}, 422),
                         ({"query": "x", "user": "ghost"}, 404), ({"query": "x", "filter": {"nope": 1}}, 422),
                         ({"k": 3}, 422)]:
        r = c.post("/search/docs", json=body)
        assert r.status_code == status, (body, r.text)
    assert c.post("/search/nothing", json={"query": "x"}).status_code == 404


# ---------------------------------------------------------------- DJL-compatible route
def test_predictions_route(live):
    _, c = live
    rec = c.get("/recommend/mf", params={"user": 1, "k": 3}).json()
    r = c.post("/predictions/mf", json={"user": 1, "k": 3})
    assert r.status_code == 200 and r.json()["items"] == rec["items"]
    r = c.post("/predictions/mf/1", json={"users": [1, 2], "k": 3})
    assert r.json()["version"] == "1" and len(r.json()["results"]) == 2
    assert "items" in c.post("/predictions/mf", json={"item": 3, "k": 2}).json()
    assert len(c.post("/predictions/mf", json={"pairs": [{"user": 1, "item": 2}]}).json()["predictions"]) == 1
    assert "hits" in c.post("/predictions/docs", json={"query": "ocean"}).json()
    assert c.post("/predictions/mf/7", json={"user": 1}).status_code == 404
    assert c.post("/predictions/mf", json={"colour": 1}).status_code == 422
    assert c.post("/predictions/mf", json=[1, 2]).status_code == 422
    assert c.post("/predictions/mf", json={"user": 1, "k": -1}).status_code == 422
    assert c.post("/predictions/mf", json={"item": 3, "k": "x"}).status_code == 422


# ---------------------------------------------------------------- security
def test_auth_required_for_management_and_feedback(live):
    _, c = live
    for method, path in [("get", "/models"), ("get", "/models/mf"), ("post", "/models?url=mf/2"),
                         ("put", "/models/mf?batch_size=4"), ("delete", "/models/mf/1"),
                         ("put", "/models/mf/1/set-default"), ("post", "/models/mf/retrain"),
                         ("get", "/feedback"), ("delete", "/feedback?user=a"), ("delete", "/feedback/1")]:
        r = getattr(c, method)(path)
        assert r.status_code == 401, (method, path)
        assert r.headers["www-authenticate"] == "Bearer"
        r = getattr(c, method)(path, headers={"Authorization": "Bearer wrong"})
        assert r.status_code == 401 and "not valid" in r.json()["message"]
    r = c.post("/feedback", json={"user": "a", "item": 1})
    assert r.status_code == 401
    assert c.get("/models", headers=AUTH).status_code == 200


def test_body_size_limit(store, tmp_path):
    app = create_app(make_config(store, tmp_path / "f.db", max_body_bytes=200))
    with BackgroundServer(app) as srv, httpx.Client(base_url=srv.url, timeout=30) as c:
        r = c.post("/recommend/mf", json={"users": list(range(100))})
        assert r.status_code == 413 and "200 bytes" in r.json()["message"]

        def chunks():
            yield b'{"users": ['
            for _ in range(100):
                yield b"1, "
            yield b"1]}"

        r = c.post("/recommend/mf", content=chunks(), headers={"content-type": "application/json"})
        assert r.status_code == 413
        assert c.post("/recommend/mf", json={"users": [1]}).status_code == 200


def test_refuses_public_bind_without_token(store, tmp_path):
    cfg = make_config(store, tmp_path / "f.db", token=None, host="0.0.0.0")
    with pytest.raises(ParameterError, match="non-loopback"):
        cfg.check_bind()
    make_config(store, tmp_path / "f.db", token="x", host="0.0.0.0").check_bind()
    make_config(store, tmp_path / "f.db", token=None, host="127.0.0.1").check_bind()
    from click.testing import CliRunner

    from recseek.cli import cli

    toml = tmp_path / "serve.toml"
    toml.write_text(f'[store]\nmodels = "{store[0]}"\n')
    res = CliRunner().invoke(cli, ["serve", str(toml), "--host", "0.0.0.0"], env={"RECSEEK_SERVE_TOKEN": ""})
    assert res.exit_code == 2 and "refusing to bind 0.0.0.0" in res.output


def test_store_paths_cannot_escape(store, tmp_path):
    s = ModelStore(store[0])
    for bad in ("..", "../etc", "a/b", ".hidden", ""):
        with pytest.raises(ParameterError):
            s.path(bad, "1")
    outside = tmp_path / "outside"
    outside.mkdir()
    link = store[0] / "mf" / "linked"
    link.symlink_to(outside, target_is_directory=True)
    try:
        with pytest.raises(ParameterError, match="outside the model store"):
            s.path("mf", "linked")
    finally:
        link.unlink()


def test_pickled_model_is_refused(fresh, store):
    _, c, _ = fresh
    bad = store[0] / "evil" / "1"
    bad.mkdir(parents=True)
    try:
        np.savez(bad / "arrays.npz", x=np.array([{"a": 1}], dtype=object))
        from recseek.persistence import _sha256

        manifest = {"format_version": 1, "kind": "model", "model": "MostPopular", "params": {},
                    "files": {"arrays.npz": _sha256(bad / "arrays.npz")}}
        (bad / "manifest.json").write_text(json.dumps(manifest))
        r = c.post("/models", params={"url": "evil/1"})
        assert r.status_code == 422 and "pickle" in r.json()["message"], r.text
        assert str(store[0]) not in r.text  # store-relative paths only
        listed = {(m["modelName"], m["version"]): m for m in c.get("/models").json()["models"]}
        assert listed[("evil", "1")]["status"] == "FAILED" and "pickle" in listed[("evil", "1")]["message"]
        r = c.post("/models", params={"url": "../1"})
        assert r.status_code == 422 and "not a valid name" in r.json()["message"]
    finally:
        import shutil

        shutil.rmtree(store[0] / "evil")


# ---------------------------------------------------------------- management
def test_management_lifecycle(fresh):
    _, c, _ = fresh
    listing = c.get("/models").json()
    assert {(m["modelName"], m["version"], m["status"]) for m in listing["models"]} == {
        ("mf", "1", "READY"), ("pop", "1", "READY"), ("docs", "1", "READY")}
    r = c.post("/models", params={"url": "mf/2", "batch_size": 8})
    assert r.status_code == 200 and r.json() == {"status": 'Model "mf" registered.', "modelName": "mf", "version": "2"}
    assert c.post("/models", params={"url": "mf/2"}).status_code == 409
    assert c.post("/models", params={"url": "mf/7"}).status_code == 404
    assert c.post("/models", params={"url": "ghost"}).status_code == 404
    assert c.post("/models", params={"model_name": "mf"}).status_code == 422  # url is required
    assert c.post("/models", params={"url": "mf/3", "batch_size": 0}).status_code == 422
    desc = c.get("/models/mf").json()
    assert [m["version"] for m in desc[0]["models"]] == ["1", "2"]
    v2 = desc[0]["models"][1]
    assert v2["batchSize"] == 8 and v2["requestInQueue"] == 0 and v2["status"] == "Healthy"
    assert len(v2["workerGroups"][0]["workers"]) == 1 and v2["default"] is False
    assert c.get("/models/ghost").status_code == 404
    # scale
    r = c.put("/models/mf/2", params={"min_worker": 2, "max_worker": 3, "max_batch_delay": 1})
    assert r.status_code == 200 and r.json() == {"status": "Worker updated"}
    v2 = c.get("/models/mf/2").json()[0]["models"][0]
    group = v2["workerGroups"][0]
    assert (group["minWorkers"], group["maxWorkers"], len(group["workers"]), v2["maxBatchDelayMillis"]) == (2, 3, 2, 1.0)
    assert c.put("/models/mf", params={"batch_size": 4}).status_code == 200
    assert c.get("/models/mf/1").json()[0]["models"][0]["batchSize"] == 4
    assert c.put("/models/mf", params={"colour": 4}).status_code == 422
    assert c.put("/models/mf", params={"min_worker": 5, "max_worker": 2}).status_code == 422
    assert c.put("/models/mf", params={"batch_size": "x"}).status_code == 422
    # default version
    r = c.put("/models/mf/2/set-default")
    assert r.json()["version"] == "2"
    assert c.get("/recommend/mf", params={"user": 1}).json()["version"] == "2"
    assert c.get("/recommend/mf", params={"user": 1, "version": "1"}).json()["version"] == "1"
    assert c.put("/models/mf/9/set-default").status_code == 404
    # unregister
    assert c.delete("/models/mf/1").json()["versions"] == ["1"]
    assert c.get("/recommend/mf", params={"user": 1, "version": "1"}).status_code == 404
    assert c.delete("/models/mf/1").status_code == 404
    assert c.delete("/models/pop").json() == {"status": 'Workflow "pop" unregistered', "versions": ["1"]}
    assert c.get("/recommend/pop", params={"user": 1}).status_code == 404
    # an index registers the same way
    assert c.delete("/models/docs").status_code == 200
    assert c.post("/models", params={"url": "docs"}).json()["version"] == "1"
    assert c.post("/search/docs", json={"query": "ocean"}).status_code == 200


def test_version_switch_under_load_drops_nothing(fresh):
    _, c, _ = fresh
    url = str(c.base_url)
    stop = threading.Event()
    failures: list[str] = []
    versions: list[str] = []

    def hammer(user: int) -> None:
        with httpx.Client(base_url=url, timeout=30) as hc:
            while not stop.is_set():
                r = hc.get("/recommend/mf", params={"user": user, "k": 5})
                if r.status_code != 200:
                    failures.append(f"{r.status_code} {r.text}")
                else:
                    versions.append(r.json()["version"])

    threads = [threading.Thread(target=hammer, args=(u,)) for u in range(4)]
    for t in threads:
        t.start()
    try:
        time.sleep(0.3)
        assert c.post("/models", params={"url": "mf/2"}).status_code == 200
        time.sleep(0.2)
        assert c.put("/models/mf/2/set-default").status_code == 200
        time.sleep(0.2)
        assert c.delete("/models/mf/1").status_code == 200
        n_after = len(versions)
        time.sleep(0.3)
    finally:
        stop.set()
        for t in threads:
            t.join()
    assert not failures, failures[:3]
    assert "1" in versions and "2" in versions
    assert set(versions[n_after + 4:]) == {"2"}


# ---------------------------------------------------------------- overload and timeouts
def _slow(execute, seconds):
    def run(jobs):
        time.sleep(seconds)
        return execute(jobs)

    return run


def test_full_queue_answers_503_and_timeout_504(store, tmp_path):
    cfg = make_config(store, tmp_path / "f.db", request_timeout_ms=400, inline_below_ms=0)
    app = create_app(cfg)
    with BackgroundServer(app) as srv:
        reg = app.state.server.registry
        ep = reg.resolve("mf")
        ep.batcher.rescale(BatchSettings(batch_size=1, max_batch_delay_ms=0, max_queue=2))
        ep.batcher.execute = _slow(ep.batcher.execute, 0.3)

        async def burst():
            async with httpx.AsyncClient(base_url=srv.url, timeout=30) as ac:
                return await asyncio.gather(*(ac.get("/recommend/mf", params={"user": u}) for u in range(8)))

        codes = [r for r in asyncio.run(burst())]
        status = sorted(r.status_code for r in codes)
        assert 503 in status and 200 in status and 504 in status, status
        r503 = next(r for r in codes if r.status_code == 503)
        assert r503.headers["retry-after"] == "1" and "overloaded" in r503.json()["message"]
        r504 = next(r for r in codes if r.status_code == 504)
        assert "did not answer within 400 ms" in r504.json()["message"]
        time.sleep(0.8)
        ep.batcher.execute = app.state.server.registry.resolve("mf").servable.execute
        with httpx.Client(base_url=srv.url) as c:
            text = c.get("/metrics").text
            assert 'recseek_rejected_total{model="mf",version="1",reason="queue_full"}' in text
            assert c.get("/recommend/mf", params={"user": 1}).status_code == 200


def test_batcher_semantics():
    """A batch closes at batch_size, or max_batch_delay after its first request; close drains."""
    from concurrent.futures import ThreadPoolExecutor

    sizes: list[int] = []

    def execute(jobs):
        sizes.append(len(jobs))
        return [j.payload * 2 for j in jobs]

    async def scenario():
        ex = ThreadPoolExecutor(2)
        b = Batcher("m", "1", execute, BatchSettings(batch_size=4, max_batch_delay_ms=50, max_queue=100),
                    executor=ex, metrics=Metrics(), timeout_s=5)
        b.start()
        t0 = time.perf_counter()
        futs = [b.submit("op", i) for i in range(10)]
        out = await asyncio.gather(*futs)
        full_batches = time.perf_counter() - t0
        assert out == [2 * i for i in range(10)]
        assert sizes[:2] == [4, 4] and sizes[2] == 2
        # a lone request waits max_batch_delay, then runs alone
        t0 = time.perf_counter()
        assert await b.submit("op", 7) == 14
        lone = time.perf_counter() - t0
        assert lone >= 0.045 and sizes[-1] == 1
        assert full_batches < 0.2
        # draining on close answers queued requests
        futs = [b.submit("op", i) for i in range(3)]
        await b.close()
        assert [f.result() for f in futs] == [0, 2, 4]
        assert b.workers == 0
        ex.shutdown()

    asyncio.run(scenario())


def test_batcher_overload_and_timeout_unit():
    from concurrent.futures import ThreadPoolExecutor

    def execute(jobs):
        time.sleep(0.2)
        return [j.payload for j in jobs]

    async def scenario():
        ex = ThreadPoolExecutor(2)
        b = Batcher("m", "1", execute, BatchSettings(batch_size=1, max_batch_delay_ms=0, max_queue=2),
                    executor=ex, timeout_s=0.3)
        b.start()
        f1 = b.submit("op", 1)
        await asyncio.sleep(0.02)  # f1 is executing
        f2 = b.submit("op", 2)
        # max_queue counts requests waiting or running; a rejected request queues none of its jobs
        with pytest.raises(Overloaded):
            b.submit_many([("op", 3), ("op", 4)])
        assert b.queue_depth == 1 and b.requests == 2
        assert await f1 == 1
        with pytest.raises(RequestTimeout):
            await f2
        await b.close()
        ex.shutdown()

    asyncio.run(scenario())


# ---------------------------------------------------------------- feedback, fold-in, restart, retrain
def test_feedback_fold_in_and_restart(store, tmp_path):
    db = tmp_path / "feedback.db"
    cfg = make_config(store, db)
    with BackgroundServer(create_app(cfg)) as srv, httpx.Client(base_url=srv.url, timeout=60, headers=AUTH) as c:
        assert c.get("/recommend/mf", params={"user": "newbie"}).status_code == 404
        r = c.post("/feedback", json={"events": [{"user": "newbie", "item": 1, "value": 5},
                                                 {"user": "newbie", "item": 4, "value": 5, "timestamp": 1e9}]})
        assert r.json() == {"stored": 2}
        rec = c.get("/recommend/mf", params={"user": "newbie", "k": 5})
        assert rec.status_code == 200
        first = [x["item"] for x in rec.json()["items"]]
        assert len(first) == 5 and 1 not in first and 4 not in first
        # feedback only on items the model does not know: still unknown
        c.post("/feedback", json={"user": "stranger", "item": "no-such-item"})
        assert c.get("/recommend/mf", params={"user": "stranger"}).status_code == 404
        for body in ({"user": "x"}, {"item": 1}, {"user": "x", "item": 1, "value": "high"},
                     {"user": "x", "item": 1, "events": []}, {"events": [{"user": "x"}]}):
            assert c.post("/feedback", json=body).status_code == 422, body
    # a new server on the same store answers from the persisted feedback
    with BackgroundServer(create_app(cfg)) as srv, httpx.Client(base_url=srv.url, timeout=60, headers=AUTH) as c:
        again = c.get("/recommend/mf", params={"user": "newbie", "k": 5}).json()
        assert [x["item"] for x in again["items"]] == first
        # retraining folds the stored events into a new default version that knows the user
        r = c.post("/models/mf/retrain")
        assert r.status_code == 200, r.text
        info = r.json()
        assert info["events"] == 3 and info["version"] == "3"
        rec = c.get("/recommend/mf", params={"user": "newbie", "k": 5}).json()
        assert rec["version"] == "3" and len(rec["items"]) == 5
        assert not {"1", "4"} & {x["item"] for x in rec["items"]}  # ids are text once users mix types
        desc = c.get("/models/mf").json()
        newest = desc[0]["models"][-1]
        assert newest["version"] == "3" and newest["default"] and newest["users"] == 62
        assert c.post("/models/pop/retrain").status_code == 422
    import shutil

    shutil.rmtree(store[0] / "mf" / "3")


def _retrain_setup(store, tmp_path, server: str = "") -> tuple[Path, Path]:
    """A store holding mf version 1, 200 stored feedback events and a serve.toml that can retrain mf."""
    import shutil

    from recseek.serving.store import FeedbackEvent, FeedbackStore

    root = tmp_path / "store"
    shutil.copytree(store[0] / "mf" / "1", root / "mf" / "1")
    db = tmp_path / "fb.db"
    fs = FeedbackStore(f"sqlite:///{db}")
    fs.add([FeedbackEvent(str(u), str(i), float(1 + (u + i) % 5)) for u in range(20) for i in range(0, 30, 3)])
    fs.close()
    toml = tmp_path / "serve.toml"
    toml.write_text(f"""{server}
[store]
models = "{root}"
feedback = "sqlite:///{db.name}"

[[models]]
name = "mf"

[models.retrain]
algorithm = "BiasedMF"
params = {{ factors = 4, epochs = 3 }}
""")
    return root, toml


def test_retrain_command(store, tmp_path):
    from click.testing import CliRunner

    from recseek.cli import cli

    root, toml = _retrain_setup(store, tmp_path)
    res = CliRunner().invoke(cli, ["retrain", "--config", str(toml), "--model", "mf"])
    assert res.exit_code == 0, res.output
    assert "mf version 2 trained from 200 feedback events" in res.output
    from recseek.models.base import Recommender

    m = Recommender.load(root / "mf" / "2")
    assert m.n_users_ == 20 and m.users_.ids.dtype.kind == "i"
    res = CliRunner().invoke(cli, ["retrain", "--config", str(toml), "--model", "nope"])
    assert res.exit_code == 2 and "no [[models]] entry named 'nope'" in res.output


# ---------------------------------------------------------------- configuration
def test_config_file_and_environment(tmp_path):
    example = Path(__file__).resolve().parents[1] / "examples" / "serve.toml"
    cfg = load_config(example, env={})
    assert cfg.host == "127.0.0.1" and cfg.port == 8080 and cfg.servables
    assert cfg.model_store == (example.parent / "model-store").resolve() or cfg.model_store.name == "model-store"
    env = {"RECSEEK_SERVE_PORT": "9001", "RECSEEK_SERVE_TOKEN": "abc", "RECSEEK_SERVE_HOST": "0.0.0.0",
           "RECSEEK_SERVE_FEEDBACK_URL": "sqlite:////tmp/x.db", "RECSEEK_SERVE_MODEL_STORE": str(tmp_path)}
    cfg = load_config(example, env=env)
    assert (cfg.port, cfg.token, cfg.host, cfg.feedback_url, cfg.model_store) == (
        9001, "abc", "0.0.0.0", "sqlite:////tmp/x.db", tmp_path)
    for raw, msg in [({"server": {"port": 70000}}, "port"), ({"server": {"colour": 1}}, "unknown key 'colour'"),
                     ({"batching": {"batch_size": 0}}, "batch_size"),
                     ({"models": [{"name": "../x"}]}, "not a valid name"),
                     ({"models": [{"version": "1"}]}, "has no name"),
                     ({"models": [{"name": "a"}, {"name": "a"}]}, "configured twice"),
                     ({"batching": {"min_worker": 3, "max_worker": 1}}, "max_worker"),
                     ({"indexes": [{"name": "d", "retrain": {"algorithm": "BPR"}}]}, "models only")]:
        with pytest.raises(ParameterError, match=msg):
            parse_config(raw)
    bad = tmp_path / "bad.toml"
    bad.write_text("[server\n")
    with pytest.raises(ParameterError, match="invalid TOML"):
        load_config(bad, env={})
    with pytest.raises(ParameterError, match="environment variable RECSEEK_SERVE_PORT"):
        load_config(None, env={"RECSEEK_SERVE_PORT": "x"})


def test_startup_skips_a_missing_model_and_the_cli_refuses_it(store, tmp_path):
    """The server starts without a model it cannot load (shown failed); ``recseek serve`` refuses the config."""
    raw = {"store": {"models": str(store[0]), "feedback": f"sqlite:///{tmp_path / 'f.db'}"},
           "models": [{"name": "absent"}, {"name": "pop"}]}
    app = create_app(parse_config(raw, tmp_path))
    with BackgroundServer(app) as srv, httpx.Client(base_url=srv.url, timeout=30) as c:
        listed = {(m["modelName"], m["status"]) for m in c.get("/models").json()["models"]}
        assert listed == {("absent", "FAILED"), ("pop", "READY")}
        assert c.get("/recommend/pop", params={"user": 1}).status_code == 200
    from click.testing import CliRunner

    from recseek.cli import cli

    items = store[1]
    cases = [('name = "absent"', "has no versions of 'absent'"),
             ('name = "mf"\nversion = "9"', "has no version '9'"),
             (f'name = "mf"\nitem_data = "{items}.missing"', "item_data file"),
             ]
    for entry, text in cases:
        toml = tmp_path / "serve.toml"
        toml.write_text(f'[store]\nmodels = "{store[0]}"\nfeedback = "sqlite:///{tmp_path / "g.db"}"\n'
                        f"[[models]]\n{entry}\n")
        res = CliRunner().invoke(cli, ["serve", str(toml)])
        assert res.exit_code == 2, (entry, res.output)
        lines = [x for x in res.output.splitlines() if x.strip()]
        assert lines[-1].startswith("error: ") and text in lines[-1], res.output
        assert "Traceback" not in res.output


def test_routed_recommend_equals_fast_path(store, tmp_path, live):
    """With fast_path off, GET /recommend goes through FastAPI's router and answers the same."""
    _, fast = live
    app = create_app(make_config(store, tmp_path / "f.db", fast_path=False))
    with BackgroundServer(app) as srv, httpx.Client(base_url=srv.url, timeout=30) as c:
        for params in ({"user": 3, "k": 4}, {"user": 3, "k": 4, "filter": "genre:Comedy", "exclude": "0,3"},
                       {"user": "ghost"}, {"user": 3, "k": 0}, {"user": 3, "colour": 1}, {"user": 3, "version": "8"},
                       {"user": 3, "exclude_seen": "maybe"}):
            a, b = c.get("/recommend/mf", params=params), fast.get("/recommend/mf", params=params)
            assert (a.status_code, a.json()) == (b.status_code, b.json()), params
        assert 'route="/recommend/{model}",method="GET"' in c.get("/metrics").text


# ---------------------------------------------------------------- personalised search with a fitted model
@pytest.fixture(scope="module")
def movies(tmp_path_factory):
    """ItemKNNRanking on 300 MovieLens-100K users and a BM25 index of the movies' titles and genres."""
    from recseek.data import read_recbole
    from recseek.search.lexical import BM25
    from recseek.search.personalized import item_documents
    from recseek.testing.fixtures import ml100k_sample, shared_data_dir

    try:
        models.get("ItemKNNRanking")
    except RecseekError:
        pytest.skip("ItemKNNRanking is not registered")
    try:
        data = ml100k_sample()
    except FileNotFoundError as e:
        pytest.skip(str(e))
    root = tmp_path_factory.mktemp("movie-store")
    for name in ("knn", "movies"):
        (root / name).mkdir()
    model = models.create("ItemKNNRanking").fit(data)
    model.save(root / "knn" / "1")
    # titles and genres of every movie, from the same data set's item file (or the offline copy)
    shared = shared_data_dir()
    if shared is None:
        from recseek import datasets

        docs = item_documents(datasets.load("ml-100k"))
    else:
        docs = item_documents(read_recbole(shared / "ml-100k"))
    bm = BM25()
    bm.index(docs)
    bm.save(root / "movies" / "1")
    raw = {"server": {"token": TOKEN}, "store": {"models": str(root), "feedback": f"sqlite:///{root / 'fb.db'}"},
           "models": [{"name": "knn"}], "indexes": [{"name": "movies", "personalize": "knn"}]}
    config = parse_config(raw, root, "movies.toml")
    with BackgroundServer(create_app(config)) as srv, httpx.Client(base_url=srv.url, timeout=60) as client:
        yield client, model


def test_personalised_search_with_fitted_model(movies):
    """A user's search ranking moves towards the items the model scores highest for that user."""
    c, model = movies
    query = "drama"
    depth = 100  # the candidates ItemSearch re-ranks
    anon = c.post("/search/movies", json={"query": query, "k": depth}).json()["hits"]
    assert len(anon) == depth
    anon_ids = [h["id"] for h in anon]
    cand = model.items_.indices(anon_ids, missing="negative")
    assert (cand >= 0).sum() > 50
    rankings = []
    for user in (1, 7, 42):
        u = model.users_.index(user)
        model_score = dict(zip(anon_ids, np.where(cand >= 0, model.score([u], np.clip(cand, 0, None))[0], -np.inf),
                               strict=True))
        personal = c.post("/search/movies", json={"query": query, "k": 10, "user": user,
                                                   "personalization": 0.5}).json()["hits"]
        ids = [h["id"] for h in personal]
        rankings.append(ids)
        # the same text candidates, re-ordered: different from the anonymous top 10 ...
        assert set(ids) <= set(anon_ids) and ids != anon_ids[:10]
        # ... and towards the user's taste: higher model scores, at some cost in text score
        mean_personal = np.mean([max(model_score[i], 0.0) for i in ids])
        mean_anon = np.mean([max(model_score[i], 0.0) for i in anon_ids[:10]])
        assert mean_personal > mean_anon, (user, mean_personal, mean_anon)
        # only the model's scores: the user's best-scored candidate comes first, in model order
        only_model = c.post("/search/movies", json={"query": query, "k": 10, "user": user,
                                                    "personalization": 1.0}).json()["hits"]
        got = [model_score[h["id"]] for h in only_model]
        assert got[0] == max(model_score.values())
        assert np.all(np.diff(got) <= 1e-5)
        # weight 0 is the anonymous search
        zero = c.post("/search/movies", json={"query": query, "k": 10, "user": user, "personalization": 0.0})
        assert [h["id"] for h in zero.json()["hits"]] == anon_ids[:10]
    assert rankings[0] != rankings[1] or rankings[1] != rankings[2]


# ---------------------------------------------------------------- hybrid search with a real dense index
HYBRID_DOCS = ["car repair and engine maintenance", "automobile mechanic fixes broken vehicles",
               "chocolate cake recipe", "baking bread at home", "football match results",
               "the car park is full tonight", "ocean waves and surfing", "garage service for damaged autos",
               "gardening tips for roses", "stock market news"]


@pytest.mark.slow
def test_hybrid_search_with_dense_index(tmp_path):
    """A lexical + dense index folder (default MiniLM encoder) served with hybrid: true gives RRF-fused hits."""
    from recseek.search.dense import DenseRetriever, default_model_path
    from recseek.search.lexical import BM25, LexicalRetriever

    pytest.importorskip("sentence_transformers")
    if default_model_path() is None:
        pytest.skip("the default MiniLM embedding model is not installed")
    docs = [{"id": f"d{i}", "title": t, "year": 2000 + i} for i, t in enumerate(HYBRID_DOCS)]
    folder = tmp_path / "store" / "cars" / "1"  # the layout of `recseek index --dense`
    folder.mkdir(parents=True)
    lexical = BM25(fields=["title"])
    lexical.index(docs)
    lexical.save(folder / "lexical")
    dense = DenseRetriever(fields=["title"])
    dense.index(docs)
    dense.save(folder / "dense")
    raw = {"server": {"token": TOKEN}, "store": {"models": str(tmp_path / "store"),
                                                  "feedback": f"sqlite:///{tmp_path / 'fb.db'}"},
           "indexes": [{"name": "cars"}]}
    config = parse_config(raw, tmp_path, "hybrid.toml")
    query, k, rrf_k = "car repair", 5, 60.0
    # the expected fusion, from each part searched on its own
    lex = LexicalRetriever.load(folder / "lexical").search(query, k=100).row(0)
    den = DenseRetriever.load(folder / "dense").search(query, k=100).row(0)
    expected: dict[str, float] = {}
    for row in (lex, den):
        for rank, (doc, _) in enumerate(row, start=1):
            expected[doc] = expected.get(doc, 0.0) + 1.0 / (rrf_k + rank)
    with BackgroundServer(create_app(config)) as srv, httpx.Client(base_url=srv.url, timeout=60) as c:
        assert c.get("/models/cars", headers=AUTH).json()[0]["models"][0]["hybrid"] is True  # DJL describe shape
        plain = c.post("/search/cars", json={"query": query, "k": k}).json()["hits"]
        assert {h["id"] for h in plain} == {"d0", "d5"}  # only these share a word with the query
        r = c.post("/search/cars", json={"query": query, "k": k, "hybrid": True})
        assert r.status_code == 200, r.text
        hits = r.json()["hits"]
        assert len(hits) == k
        # fused: documents without a shared word come in through the dense part
        assert {h["id"] for h in hits} - {"d0", "d5"}
        assert hits[0]["id"] == "d0"  # first in both lists
        np.testing.assert_allclose([h["score"] for h in hits], [expected[h["id"]] for h in hits], rtol=1e-5)
        np.testing.assert_allclose([h["score"] for h in hits], sorted(expected.values(), reverse=True)[:k],
                                   rtol=1e-5)
        # a metadata filter applies to both parts
        r = c.post("/search/cars", json={"query": query, "k": k, "hybrid": True, "filter": {"year": {"gte": 2004}}})
        got = r.json()["hits"]
        assert got and all(int(h["id"][1:]) >= 4 for h in got) and "d0" not in {h["id"] for h in got}


def test_index_batches_search_one_at_a_time():
    """Several workers never run searches of one index version at the same time."""
    from recseek.search.base import Hits
    from recseek.serving.batching import Job
    from recseek.serving.servables import IndexServable

    class Recording:
        active = peak = calls = 0
        guard = threading.Lock()

        def search(self, queries, k=10, *, filter=None):
            with self.guard:
                self.active += 1
                self.calls += 1
                self.peak = max(self.peak, self.active)
            time.sleep(0.02)
            with self.guard:
                self.active -= 1
            n = len(queries)
            return Hits(np.full((n, k), "a", dtype="<U1"), np.ones((n, k), dtype=np.float32))

    retriever = Recording()
    servable = IndexServable(retriever, "idx", "1", Path("1"))
    jobs = [Job("search", {"query": "q", "k": 1, "filter": None, "hybrid": False, "personal": None}, None, 0.0)]
    threads = [threading.Thread(target=servable.execute, args=(jobs,)) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert retriever.calls == 4 and retriever.peak == 1


def test_retrain_notify_registers_the_new_version_as_default(store, tmp_path):
    """`retrain --notify` speaks the management API the server has (DJL parameter names)."""
    import socket

    from click.testing import CliRunner

    from recseek.cli import cli

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    _, toml = _retrain_setup(store, tmp_path, f'[server]\nhost = "127.0.0.1"\nport = {port}\n')
    cfg = load_config(toml, env={})
    with BackgroundServer(create_app(cfg), port=port) as srv, httpx.Client(base_url=srv.url, timeout=60) as c:
        res = CliRunner().invoke(cli, ["retrain", "--config", str(toml), "--model", "mf", "--notify"])
        assert res.exit_code == 0, res.output
        assert "now serves mf version 2 by default" in res.output
        listing = {(m["modelName"], m["version"]): m for m in c.get("/models").json()["models"]}
        assert listing[("mf", "2")]["status"] == "READY" and listing[("mf", "2")]["default"]
