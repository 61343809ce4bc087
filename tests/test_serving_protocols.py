"""Contract tests: DJL Serving's documented curl examples and KServe's Open Inference Protocol v2,
replayed against a real no-token server on 127.0.0.1, JSON shapes checked field by field."""

from __future__ import annotations

import json
import shutil
import subprocess
import time

import pytest

pytest.importorskip("fastapi")
pytest.importorskip("uvicorn")
httpx = pytest.importorskip("httpx")

from recseek.models import registry as models  # noqa: E402
from recseek.serving.app import create_app  # noqa: E402
from recseek.serving.cli import BackgroundServer  # noqa: E402
from recseek.serving.config import parse_config  # noqa: E402
from recseek.testing.fixtures import synthetic  # noqa: E402

CURL = shutil.which("curl")


def build_store(root):
    """mf (BiasedMF, versions 1 and 2), pop (MostPopular) and docs (BM25) in a model store."""
    data = synthetic(60, 40, seed=3)
    models.create("BiasedMF", factors=8, epochs=10, seed=0).fit(data).save(root / "mf" / "1")
    models.create("BiasedMF", factors=8, epochs=10, seed=1).fit(data).save(root / "mf" / "2")
    models.create("MostPopular").fit(data).save(root / "pop" / "1")
    from recseek.search.lexical import BM25

    words = ["space", "love", "war", "ocean", "robot"]
    bm = BM25(fields=["title"])
    bm.index([{"id": str(i), "title": f"{words[i % 5]} story number {i}"} for i in range(40)])
    bm.save(root / "docs" / "1")
    return root


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    root = build_store(tmp_path_factory.mktemp("store"))
    db = tmp_path_factory.mktemp("db") / "f.db"
    cfg = parse_config({"store": {"models": str(root), "feedback": f"sqlite:///{db}"},
                        "models": [{"name": "mf", "version": "1"}], "indexes": [{"name": "docs"}]}, root.parent)
    with BackgroundServer(create_app(cfg)) as srv:
        yield srv, root


def curl(srv, *args: str) -> tuple[int, dict | list]:
    """Run curl as the documentation does (``localhost``), returning the status and the JSON body."""
    if CURL is None:
        pytest.fail("curl is needed to replay the DJL documentation's examples")
    argv = [CURL, "-s", "-o", "-", "-w", "\n%{http_code}", *[a.replace("localhost:8080", f"localhost:{srv.port}")
                                                          for a in args]]
    out = subprocess.run(argv, capture_output=True, text=True, timeout=60, check=True).stdout
    body, _, code = out.rpartition("\n")
    return int(code), json.loads(body)


def _types(obj: dict, spec: dict[str, type | tuple[type, ...]]) -> None:
    for key, typ in spec.items():
        assert key in obj, (key, obj)
        assert isinstance(obj[key], typ), (key, obj[key])


def _djl_error(body: dict, code: int) -> None:
    _types(body, {"code": int, "type": str, "message": str})
    assert body["code"] == code and body["message"]


# ---------------------------------------------------------------- DJL Serving
def test_djl_ping(server):
    srv, _ = server
    code, body = curl(srv, "http://localhost:8080/ping")
    assert code == 200 and body["health"] == "healthy!"


def test_djl_register_describe_scale_list_unregister(server):
    srv, _ = server
    # the documented example names a remote archive: refused, with DJL's error body
    code, body = curl(srv, "-X", "POST",
                      "http://localhost:8080/models?url=https%3A%2F%2Fresources.djl.ai%2Ftest-models%2Fmlp.zip")
    assert code == 422 and "inside the model store" in body["message"]
    _djl_error(body, 422)
    # the same call with a store path
    code, body = curl(srv, "-X", "POST", "http://localhost:8080/models?url=mf%2F2")
    assert code == 200 and body["status"] == 'Model "mf" registered.'
    # asynchronous registration: 202 at once, READY later
    code, body = curl(srv, "-v", "-X", "POST", "http://localhost:8080/models?url=pop&synchronous=false")
    assert code == 202 and body["status"] == 'Model "pop" registration scheduled.'
    deadline = time.monotonic() + 30
    while True:
        _, listing = curl(srv, "http://localhost:8080/models")
        status = {(m["modelName"], m["version"]): m["status"] for m in listing["models"]}
        if status.get(("pop", "1")) == "READY" or time.monotonic() > deadline:
            break
        time.sleep(0.05)
    assert status[("pop", "1")] == "READY"
    # scale workers (the documented call goes through /workflows)
    code, body = curl(srv, "-v", "-X", "PUT", "http://localhost:8080/workflows/mf?min_worker=3&synchronous=false")
    assert code == 202 and body == {"status": "Worker updated"}
    # describe, field by field
    code, body = curl(srv, "http://localhost:8080/models/mf")
    assert code == 200 and isinstance(body, list) and len(body) == 1
    assert body[0]["workflowName"] == "mf"
    for m in body[0]["models"]:
        _types(m, {"modelName": str, "modelUrl": str, "batchSize": int, "maxBatchDelayMillis": (int, float),
                   "maxIdleSeconds": (int, float), "queueSize": int, "requestInQueue": int, "status": str,
                   "loadedAtStartup": bool, "workerGroups": list})
        group = m["workerGroups"][0]
        _types(group, {"device": dict, "minWorkers": int, "maxWorkers": int, "workers": list})
        assert group["device"] == {"deviceType": "cpu", "deviceId": -1}
        assert group["minWorkers"] == 3 and len(group["workers"]) == 3
        for w in group["workers"]:
            _types(w, {"id": int, "startTime": str, "status": str})
    assert [m["status"] for m in body[0]["models"]] == ["Healthy", "Healthy"]
    assert [m["loadedAtStartup"] for m in body[0]["models"]] == [True, False]
    code, body = curl(srv, "http://localhost:8080/models/mf/2")
    assert code == 200 and [m["version"] for m in body[0]["models"]] == ["2"]
    # paging
    code, page = curl(srv, "http://localhost:8080/models?limit=2&next_page_token=0")
    assert code == 200 and len(page["models"]) == 2
    for m in page["models"]:
        _types(m, {"modelName": str, "modelUrl": str, "status": str})
    names = [(m["modelName"], m["version"]) for m in page["models"]]
    while "nextPageToken" in page:
        _, page = curl(srv, f"http://localhost:8080/models?limit=2&next_page_token={page['nextPageToken']}")
        names += [(m["modelName"], m["version"]) for m in page["models"]]
    assert names == [("docs", "1"), ("mf", "1"), ("mf", "2"), ("pop", "1")]
    # unregister
    code, body = curl(srv, "-X", "DELETE", "http://localhost:8080/models/pop")
    assert code == 200 and body["status"] == 'Workflow "pop" unregistered'
    code, body = curl(srv, "-X", "DELETE", "http://localhost:8080/models/mf/2")
    assert code == 200 and body["versions"] == ["2"]


def test_djl_parameters_take_effect_or_are_refused(server):
    srv, _ = server
    base = "http://localhost:8080/models"
    code, body = curl(srv, "-X", "POST", f"{base}?url=pop&colour=red")
    assert code == 422 and "'colour'" in body["message"]
    for bad, text in [("engine=PyTorch", "engine"), ("device=gpu0", "device"), ("min_worker=72057594037927936", "1.."),
                      ("min_worker=100000", "min_worker"), ("batch_size=100000", "batch_size"),
                      ("max_batch_delay=10000", "below the request timeout"), ("job_queue_size=0", "job_queue_size"),
                      ("synchronous=maybe", "true or false"), ("url=..%2Fetc", "not a valid name")]:
        code, body = curl(srv, "-X", "POST", f"{base}?url=pop&{bad}" if not bad.startswith("url") else f"{base}?{bad}")
        assert code == 422 and text in body["message"], (bad, body)
    code, body = curl(srv, "-X", "POST", f"{base}?url=file%3A%2F%2F%2Fetc%2Fpasswd")
    assert code == 404 and "outside the model store" in body["message"]
    # model_version picks that version (not the newest, 2), and every setting is applied
    assert curl(srv, "-X", "DELETE", f"{base}/mf/1")[0] == 200
    code, body = curl(srv, "-X", "POST", f"{base}?url=mf&model_version=1&batch_size=7&max_batch_delay=3"
                                         "&job_queue_size=50&max_idle_time=9&min_worker=2&max_worker=4&engine=recseek"
                                         "&device=cpu")
    assert code == 200 and body["version"] == "1", body
    _, desc = curl(srv, f"{base}/mf/1")
    m = desc[0]["models"][0]
    group = m["workerGroups"][0]
    assert (m["batchSize"], m["maxBatchDelayMillis"], m["queueSize"], m["maxIdleSeconds"]) == (7, 3.0, 50, 9.0)
    assert (group["minWorkers"], group["maxWorkers"]) == (2, 4)
    code, body = curl(srv, "-X", "PUT", f"{base}/mf/1?batch_size=5&job_queue_size=60&max_idle_time=2")
    assert code == 200 and body == {"status": "Worker updated"}
    m = curl(srv, f"{base}/mf/1")[1][0]["models"][0]
    assert (m["batchSize"], m["queueSize"], m["maxIdleSeconds"]) == (5, 60, 2.0)
    code, body = curl(srv, "-X", "PUT", f"{base}/mf/1?colour=1")
    assert code == 422 and "'colour'" in body["message"]
    # as in DJL, model_name and model_version label what is served; url says where it is loaded from
    assert curl(srv, "-X", "POST", f"{base}?url=mf%2F2")[0] == 200
    code, body = curl(srv, "-X", "POST", f"{base}?url=mf%2F2&model_name=films&model_version=seven")
    assert code == 200 and (body["modelName"], body["version"]) == ("films", "seven")
    listed = {(m["modelName"], m["version"]): m for m in curl(srv, base)[1]["models"]}
    assert listed[("films", "seven")]["modelUrl"] == "mf/2"
    with httpx.Client(base_url=srv.url) as c:
        a = c.get("/recommend/films", params={"user": 1, "k": 4}).json()
        b = c.get("/recommend/mf", params={"user": 1, "k": 4, "version": "2"}).json()
    assert a["version"] == "seven" and a["items"] == b["items"]
    curl(srv, "-X", "DELETE", f"{base}/films")
    curl(srv, "-X", "DELETE", f"{base}/mf/2")
    # file:// inside the store registers too
    code, body = curl(srv, "-X", "POST", f"{base}?url=file%3A%2F%2F{server[1]}%2Fmf%2F2")
    assert code == 200 and body["version"] == "2"
    curl(srv, "-X", "DELETE", f"{base}/mf/2")


def test_djl_predictions_body_file_and_multipart(server, tmp_path):
    srv, _ = server
    body = tmp_path / "request.json"
    body.write_text(json.dumps({"user": 1, "k": 3}))
    with httpx.Client(base_url=srv.url) as c:
        expected = c.get("/recommend/mf", params={"user": 1, "k": 3}).json()["items"]
    code, out = curl(srv, "-X", "POST", "http://localhost:8080/predictions/mf", "-T", str(body))
    assert code == 200 and out["items"] == expected
    code, out = curl(srv, "-X", "POST", "http://localhost:8080/predictions/mf", "-F", f"data=@{body}")
    assert code == 200 and out["items"] == expected
    code, out = curl(srv, "-X", "POST", "http://localhost:8080/predictions/mf", "-F", f"other=@{body}")
    assert code == 422 and "no part named 'data'" in out["message"]
    code, out = curl(srv, "-X", "POST", "http://localhost:8080/invocations?model_name=mf", "-T", str(body))
    assert code == 200 and out["items"] == expected
    code, out = curl(srv, "-X", "POST", "http://localhost:8080/invocations", "-T", str(body))
    assert code == 404 and "name one with ?model_name=" in out["message"]
    code, out = curl(srv, "-X", "POST", "http://localhost:8080/predictions/ghost", "-T", str(body))
    assert code == 404
    _djl_error(out, 404)


# ---------------------------------------------------------------- KServe Open Inference Protocol v2
def test_oip_metadata_and_readiness(server):
    srv, _ = server
    with httpx.Client(base_url=srv.url) as c:
        meta = c.get("/v2").json()
        _types(meta, {"name": str, "version": str, "extensions": list})
        assert c.get("/v2/health/live").json() == {"live": True}
        assert c.get("/v2/health/ready").json() == {"ready": True}
        for path in ("/v2/models/mf", "/v2/models/mf/versions/1", "/v2/models/docs"):
            m = c.get(path).json()
            _types(m, {"name": str, "versions": list, "platform": str, "inputs": list, "outputs": list})
            for t in m["inputs"] + m["outputs"]:
                _types(t, {"name": str, "datatype": str, "shape": list})
        assert {t["name"] for t in c.get("/v2/models/mf").json()["inputs"]} == {"user", "k", "items"}
        assert c.get("/v2/models/mf/ready").json() == {"name": "mf", "ready": True}
        assert c.get("/v2/models/mf/versions/1/ready").status_code == 200
        r = c.get("/v2/models/ghost")
        assert r.status_code == 404 and set(r.json()) == {"error"}
        assert c.get("/v2/models/mf/versions/9/ready").status_code == 404


def test_oip_infer_recommend_predict_search(server):
    srv, _ = server
    with httpx.Client(base_url=srv.url) as c:
        req = {"id": "r1", "inputs": [{"name": "user", "shape": [2], "datatype": "INT64", "data": [1, 2]},
                                      {"name": "k", "shape": [1], "datatype": "INT64", "data": [4]}]}
        r = c.post("/v2/models/mf/infer", json=req)
        assert r.status_code == 200, r.text
        out = r.json()
        assert (out["model_name"], out["model_version"], out["id"]) == ("mf", "1", "r1")
        by = {o["name"]: o for o in out["outputs"]}
        assert by["items"]["shape"] == [2, 4] and by["items"]["datatype"] == "INT64"
        assert by["scores"]["datatype"] == "FP32" and by["counts"]["data"] == [4, 4]
        for row, user in enumerate((1, 2)):
            rec = c.get("/recommend/mf", params={"user": user, "k": 4}).json()["items"]
            assert by["items"]["data"][row * 4:(row + 1) * 4] == [x["item"] for x in rec]
        # ratings of user x items
        req = {"inputs": [{"name": "user", "shape": [1], "datatype": "INT64", "data": [3]},
                          {"name": "items", "shape": [3], "datatype": "INT64", "data": [0, 1, 2]}],
               "outputs": [{"name": "rating"}]}
        out = c.post("/v2/models/mf/versions/1/infer", json=req).json()
        expected = c.post("/predict-rating/mf", json={"user": 3, "items": [0, 1, 2]}).json()["predictions"]
        assert out["outputs"][0]["shape"] == [1, 3]
        assert out["outputs"][0]["data"] == pytest.approx([p["rating"] for p in expected])
        # search
        req = {"inputs": [{"name": "query", "shape": [2], "datatype": "BYTES", "data": ["robot", "ocean"]},
                          {"name": "k", "shape": [1], "datatype": "INT64", "data": [3]}]}
        out = c.post("/v2/models/docs/infer", json=req).json()
        ids = {o["name"]: o for o in out["outputs"]}["ids"]
        assert ids["shape"] == [2, 3] and all(int(i) % 5 == 4 for i in ids["data"][:3])


@pytest.mark.parametrize(("inputs", "text"), [
    ([{"name": "user", "shape": [2], "datatype": "INT64", "data": [1]}], "does not match"),
    ([{"name": "user", "shape": [1], "datatype": "FP16", "data": [1]}], "datatype"),
    ([{"name": "user", "shape": [1], "datatype": "FP32", "data": [1.5]}], "BYTES or INT64"),
    ([{"name": "colour", "shape": [1], "datatype": "INT64", "data": [1]}], "unknown input 'colour'"),
    ([{"name": "user", "shape": [1], "datatype": "INT64", "data": [1]},
      {"name": "k", "shape": [1], "datatype": "INT64", "data": [0]}], "'k'"),
    ([{"name": "user", "shape": [1], "datatype": "BYTES", "data": [7]}], "strings"),
])
def test_oip_errors(server, inputs, text):
    srv, _ = server
    with httpx.Client(base_url=srv.url) as c:
        r = c.post("/v2/models/mf/infer", json={"inputs": inputs})
        assert r.status_code == 400, r.text
        assert set(r.json()) == {"error"} and text in r.json()["error"]
        r = c.post("/v2/models/mf/infer", json={"inputs": [{"name": "user", "shape": [1], "datatype": "INT64",
                                                            "data": [1]}], "outputs": [{"name": "nope"}]})
        assert r.status_code == 400 and "'nope'" in r.json()["error"]
        assert c.post("/v2/models/mf/infer", json={"inputs": []}).status_code == 400
