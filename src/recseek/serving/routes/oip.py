"""KServe's Open Inference Protocol (v2 REST): server and model metadata, readiness, infer.

A model takes the input tensors ``user`` (BYTES or INT64, shape ``[n]``), optionally ``k``
(INT64, ``[1]``, default 10) and ``items`` (BYTES or INT64, ``[m]``): without ``items`` it
recommends (outputs ``items`` ``[n, k]``, ``scores`` FP32 ``[n, k]`` and ``counts`` INT64
``[n]``: rows shorter than k are padded with ``""`` or ``-1`` and score 0, ``counts`` says
how many entries are real); with ``items`` a rating model predicts (output ``rating`` FP32
``[n, m]``). An index takes ``query`` (BYTES ``[n]``) and ``k`` and answers ``ids`` (BYTES),
``scores`` and ``counts`` the same way. Errors are OIP's ``{"error": "..."}``.
"""

from __future__ import annotations

import asyncio
import math
from typing import Any

from fastapi import APIRouter, Depends
from pydantic import ValidationError

from ...errors import ParameterError
from ..http import JSON, responses
from ..registry import Endpoint, Problem
from ..schemas import (
    MAX_K,
    OipError,
    OipInferRequest,
    OipInferResponse,
    OipModelMetadata,
    OipReady,
    OipServerMetadata,
    OipTensor,
    PairRatingsRequest,
)
from ..servables import ModelServable
from ..state import Server, server_of
from .inference import _predict, recommend_users

router = APIRouter(prefix="/v2", tags=["open inference protocol"])

_ERR = {c: {"model": OipError, "description": d["description"]} for c, d in responses(400, 403, 404, 413, 431, 503,
                                                                                         504).items()}
_DATATYPES = {"BYTES", "INT64", "INT32", "FP32", "FP64", "BOOL"}


def _version() -> str:
    from ... import __version__

    return __version__


def _endpoint(server: Server, model: str, version: str | None) -> Endpoint:
    return server.registry.resolve(model, version)


def _meta(ep: Endpoint, versions: list[str]) -> dict[str, Any]:
    s = ep.servable
    if s.kind == "index":
        inputs = [{"name": "query", "datatype": "BYTES", "shape": [-1]}, {"name": "k", "datatype": "INT64",
                                                                           "shape": [1]}]
        outputs = [{"name": "ids", "datatype": "BYTES", "shape": [-1, -1]}]
    else:
        id_type = "INT64" if _int_ids(s) else "BYTES"
        inputs = [{"name": "user", "datatype": id_type, "shape": [-1]},
                  {"name": "k", "datatype": "INT64", "shape": [1]},
                  {"name": "items", "datatype": id_type, "shape": [-1]}]
        outputs = [{"name": "items", "datatype": id_type, "shape": [-1, -1]}]
        if s.task == "rating":
            outputs.append({"name": "rating", "datatype": "FP32", "shape": [-1, -1]})
    outputs += [{"name": "scores", "datatype": "FP32", "shape": [-1, -1]},
                {"name": "counts", "datatype": "INT64", "shape": [-1]}]
    return {"name": s.name, "versions": versions, "platform": f"recseek_{s.kind}", "inputs": inputs,
            "outputs": outputs}


def _int_ids(s: ModelServable) -> bool:
    ids = s._item_ids
    return ids.dtype.kind in "iu"


def _served_versions(server: Server, model: str) -> list[str]:
    return [v for _, v, ep, _ in server.registry.entries(model) if isinstance(ep, Endpoint)]


# ---------------------------------------------------------------- tensors
def _tensors(body: OipInferRequest) -> dict[str, OipTensor]:
    out: dict[str, OipTensor] = {}
    for t in body.inputs:
        if t.name in out:
            raise ParameterError(f"input {t.name!r} is given twice")
        if t.datatype not in _DATATYPES:
            raise ParameterError(f"input {t.name!r}: datatype {t.datatype!r} is not one of {sorted(_DATATYPES)}")
        if any(d < 0 for d in t.shape) or math.prod(t.shape) != len(t.data):
            raise ParameterError(f"input {t.name!r}: shape {t.shape} does not match its {len(t.data)} data elements")
        out[t.name] = t
    return out


def _ids(t: OipTensor) -> list[Any]:
    if t.datatype == "BYTES":
        if not all(isinstance(x, str) for x in t.data):
            raise ParameterError(f"input {t.name!r}: BYTES data must be strings")
        return list(t.data)
    if t.datatype in ("INT64", "INT32"):
        if not all(isinstance(x, int) and not isinstance(x, bool) for x in t.data):
            raise ParameterError(f"input {t.name!r}: {t.datatype} data must be integers")
        return list(t.data)
    raise ParameterError(f"input {t.name!r} must be BYTES or INT64, got {t.datatype}")


def _k(tensors: dict[str, OipTensor]) -> int:
    t = tensors.get("k")
    if t is None:
        return 10
    if t.datatype not in ("INT64", "INT32") or len(t.data) != 1:
        raise ParameterError("input 'k' must be one INT64 value")
    k = t.data[0]
    if isinstance(k, bool) or not isinstance(k, int) or not 1 <= k <= MAX_K:
        raise ParameterError(f"input 'k' must be an integer in 1..{MAX_K}, got {k!r}")
    return k


def _padded(rows: list[dict[str, list]], key: str, pad: Any) -> tuple[list[Any], int]:
    width = max((len(r[key]) for r in rows), default=0)
    flat: list[Any] = []
    for r in rows:
        flat += r[key] + [pad] * (width - len(r[key]))
    return flat, width


def _ranked_outputs(rows: list[dict[str, list]], id_name: str, id_type: str) -> list[dict[str, Any]]:
    ids, width = _padded(rows, "items", "" if id_type == "BYTES" else -1)
    scores, _ = _padded(rows, "scores", 0.0)
    n = len(rows)
    return [{"name": id_name, "datatype": id_type, "shape": [n, width], "data": ids},
            {"name": "scores", "datatype": "FP32", "shape": [n, width], "data": scores},
            {"name": "counts", "datatype": "INT64", "shape": [n], "data": [len(r["items"]) for r in rows]}]


async def _infer_model(server: Server, ep: Endpoint, model: str, tensors: dict[str, OipTensor]) -> list[dict]:
    s: ModelServable = ep.servable  # type: ignore[assignment]
    unknown = set(tensors) - {"user", "k", "items"}
    if unknown:
        raise ParameterError(f"unknown input {sorted(unknown)[0]!r} (a model takes user, k and items)")
    if "user" not in tensors:
        raise ParameterError("input 'user' is required")
    users = _ids(tensors["user"])
    if not users:
        raise ParameterError("input 'user' is empty")
    if "items" in tensors:
        items = _ids(tensors["items"])
        if not items:
            raise ParameterError("input 'items' is empty")
        if len(users) * len(items) > server.config.max_results:
            raise ParameterError(f"{len(users)} users x {len(items)} items is over the limit of "
                                 f"{server.config.max_results} results per request")
        try:
            body = PairRatingsRequest(pairs=[{"user": u, "item": i} for u in users for i in items])
        except ValidationError as e:
            raise ParameterError(f"invalid ids: {e.errors()[0].get('msg', 'invalid')}") from None
        out = await _predict(server, model, ep.version, body)
        ratings = [p["rating"] for p in out["predictions"]]
        return [{"name": "rating", "datatype": "FP32", "shape": [len(users), len(items)], "data": ratings}]
    _, rows = await recommend_users(server, model, ep.version, users, _k(tensors), True, None, None)
    return _ranked_outputs(rows, "items", "INT64" if _int_ids(s) else "BYTES")


async def _infer_index(server: Server, ep: Endpoint, tensors: dict[str, OipTensor]) -> list[dict]:
    unknown = set(tensors) - {"query", "k"}
    if unknown:
        raise ParameterError(f"unknown input {sorted(unknown)[0]!r} (an index takes query and k)")
    if "query" not in tensors or tensors["query"].datatype != "BYTES":
        raise ParameterError("input 'query' (BYTES) is required")
    queries = _ids(tensors["query"])
    if not queries or any(not q or len(q) > 10_000 for q in queries):
        raise ParameterError("input 'query' needs 1 or more non-empty strings of at most 10000 characters")
    k = _k(tensors)
    if len(queries) * k > server.config.max_results:
        raise ParameterError(f"{len(queries)} queries x k={k} is over the limit of {server.config.max_results}")
    jobs = [("search", {"query": q, "k": k, "filter": None, "hybrid": False, "personal": None}) for q in queries]
    rows = list(await asyncio.gather(*ep.batcher.submit_many(jobs)))
    return _ranked_outputs(rows, "ids", "BYTES")


async def _infer(server: Server, model: str, version: str | None, body: OipInferRequest) -> JSON:
    ep = _endpoint(server, model, version)
    tensors = _tensors(body)
    if ep.servable.kind == "index":
        outputs = await _infer_index(server, ep, tensors)
    else:
        outputs = await _infer_model(server, ep, model, tensors)
    if body.outputs is not None:
        wanted = [o.name for o in body.outputs]
        have = {o["name"]: o for o in outputs}
        missing = [w for w in wanted if w not in have]
        if missing:
            raise ParameterError(f"requested output {missing[0]!r} is not produced (outputs: {', '.join(have)})")
        outputs = [have[w] for w in wanted]
    out: dict[str, Any] = {"model_name": model, "model_version": ep.version, "outputs": outputs}
    if body.id is not None:
        out["id"] = body.id
    return JSON(out)


def _ready_answer(server: Server, model: str, version: str | None) -> JSON:
    rows = [r for r in server.registry.entries(model) if version is None or r[1] == version]
    if not rows:
        server.registry.resolve(model, version)  # the precise 404
    if version is None:
        ready = server.registry.default_of(model) is not None
    else:
        ready = isinstance(rows[0][2], Endpoint) and not isinstance(rows[0][2], Problem)
    return JSON({"name": model, "ready": ready}, status_code=200 if ready else 400)


# ---------------------------------------------------------------- routes
@router.get("", response_model=OipServerMetadata, responses=_ERR)
async def server_metadata() -> JSON:
    """OIP server metadata."""
    return JSON({"name": "recseek", "version": _version(), "extensions": []})


@router.get("/health/live", responses=_ERR)
async def live() -> JSON:
    """OIP liveness."""
    return JSON({"live": True})


@router.get("/health/ready", responses=_ERR)
async def ready(server: Server = Depends(server_of)) -> JSON:
    """OIP readiness of the server (every served name has a default version)."""
    ok = server.started and server.registry.is_ready()
    return JSON({"ready": ok}, status_code=200 if ok else 503)


@router.get("/models/{model}", response_model=OipModelMetadata, responses=_ERR)
async def model_metadata(model: str, server: Server = Depends(server_of)) -> JSON:
    """OIP model metadata (the default version's inputs and outputs)."""
    return JSON(_meta(_endpoint(server, model, None), _served_versions(server, model)))


@router.get("/models/{model}/versions/{version}", response_model=OipModelMetadata, responses=_ERR)
async def version_metadata(model: str, version: str, server: Server = Depends(server_of)) -> JSON:
    """OIP metadata of one version."""
    return JSON(_meta(_endpoint(server, model, version), [version]))


@router.get("/models/{model}/ready", response_model=OipReady, responses=_ERR)
async def model_ready(model: str, server: Server = Depends(server_of)) -> JSON:
    """200 when the model has a default version serving, else 400."""
    return _ready_answer(server, model, None)


@router.get("/models/{model}/versions/{version}/ready", response_model=OipReady, responses=_ERR)
async def version_ready(model: str, version: str, server: Server = Depends(server_of)) -> JSON:
    """200 when the version serves, else 400 (pending or failed)."""
    return _ready_answer(server, model, version)


@router.post("/models/{model}/infer", response_model=OipInferResponse, responses=_ERR)
async def infer(model: str, body: OipInferRequest, server: Server = Depends(server_of)) -> JSON:
    """OIP inference on the default version."""
    return await _infer(server, model, None, body)


@router.post("/models/{model}/versions/{version}/infer", response_model=OipInferResponse, responses=_ERR)
async def infer_version(model: str, version: str, body: OipInferRequest,
                        server: Server = Depends(server_of)) -> JSON:
    """OIP inference on one version."""
    return await _infer(server, model, version, body)
