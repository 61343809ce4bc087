"""DJL Serving's management API (``/models``, and ``/workflows`` for the same single-model
workflows), plus recseek's default-version and retrain routes.

Query parameters follow DJL's names (``url``, ``model_name``, ``model_version``,
``batch_size``, ``max_batch_delay``, ``job_queue_size``, ``max_idle_time``,
``min_worker``, ``max_worker``, ``synchronous``); every one takes effect and any other
is refused with a 422 naming it. Every number is bounded (see :mod:`.config`).
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from typing import Any

from fastapi import APIRouter, Depends, Request

from ...errors import ParameterError, RecseekError
from ..config import MAX_BATCH_SIZE, MAX_DELAY_MS, MAX_IDLE_S, MAX_QUEUE, MAX_WORKERS
from ..http import JSON, Query, param, responses
from ..registry import Endpoint, Problem
from ..schemas import (
    DescribedWorkflow,
    ListModelsResponse,
    RegisterStatus,
    StatusResponse,
    UnregisterResponse,
)
from ..state import Server, server_of
from .auth import require_token

log = logging.getLogger("recseek.serving")

router = APIRouter(tags=["management"], dependencies=[Depends(require_token)])

_ERR = responses(400, 401, 403, 404, 409, 413, 422, 431)

#: DJL query parameter -> (batching setting, converter, low, high)
_SETTINGS: dict[str, tuple[str, type, float, float]] = {
    "batch_size": ("batch_size", int, 1, MAX_BATCH_SIZE),
    "max_batch_delay": ("max_batch_delay_ms", float, 0, MAX_DELAY_MS),
    "job_queue_size": ("max_queue", int, 1, MAX_QUEUE),
    "max_idle_time": ("max_idle_time", float, 1e-3, MAX_IDLE_S),
    "min_worker": ("min_worker", int, 1, MAX_WORKERS),
    "max_worker": ("max_worker", int, 1, MAX_WORKERS),
}
_REGISTER_NAMES = ("url", "model_name", "model_version", "engine", "device", "synchronous", "default", *_SETTINGS)
_SCALE_NAMES = ("synchronous", *_SETTINGS)


def _setting_params() -> list[dict[str, Any]]:
    out = []
    for name, (_, conv, lo, hi) in _SETTINGS.items():
        typ = "integer" if conv is int else "number"
        out.append(param(name, "query", typ, f"Batching setting ({lo:g}..{hi:g}).", minimum=lo, maximum=hi))
    return out


_SYNC = param("synchronous", "query", "boolean", "Wait until done (true) or answer 202 at once (false).",
              default=True)
_NAME_PATTERN = "^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$"
_REGISTER_PARAMS = [
    param("url", "query", "string", "Model folder inside the store: name, name/version or a file:// URL there.",
          True, pattern=r"^(file://.{1,4096}|[A-Za-z0-9][A-Za-z0-9._-]{0,63}(/[A-Za-z0-9][A-Za-z0-9._-]{0,63})?)$"),
    param("model_name", "query", "string", "Served name (default: the store folder's name).",
          pattern=_NAME_PATTERN),
    param("model_version", "query", "string", "Version served (default: the version in url, else the newest "
          "in the store); when url names only a folder, the store version loaded.", pattern=_NAME_PATTERN),
    param("engine", "query", "string", "Only 'recseek' (the engine is always recseek).", enum=["recseek"]),
    param("device", "query", "string", "Only the CPU: 'cpu' or '-1'.", enum=["cpu", "-1"]),
    _SYNC,
    param("default", "query", "boolean", "Make the new version the default at once.", default=False),
    *_setting_params(),
]
_NAME = param("name", "path", "string", "Model or index name.", True)
_VERSION = param("version", "path", "string", "Version.", True)
_SCALE_PARAMS = [_SYNC, *_setting_params()]
_PAGE_PARAMS = [
    param("limit", "query", "integer", "Most entries to return (1..1000).", default=100, minimum=1, maximum=1000),
    param("next_page_token", "query", "string", "Token of the next page from a previous answer.",
          pattern="^[0-9]{1,9}$"),
]


def _settings(q: Query) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for name, (key, conv, lo, hi) in _SETTINGS.items():
        v = q.integer(name, None, int(lo), int(hi)) if conv is int else q.number(name, lo, hi)
        if v is not None:
            out[key] = v
    return out


def _engine_device(q: Query) -> None:
    engine = q.get("engine")
    if engine is not None and engine.lower() != "recseek":
        raise ParameterError(f"engine {engine!r} is not available: recseek serves its own model folders "
                             "(leave engine out or give engine=recseek)")
    device = q.get("device")
    if device is not None and device.lower() not in ("cpu", "-1"):
        raise ParameterError(f"device {device!r} is not available: recseek serves on the CPU (cpu or -1)")


def _target(server: Server, q: Query) -> tuple[str, str | None, str, str | None]:
    """``(served name, served version, store folder, store version)`` of a registration (None: newest).

    As in DJL, ``model_name`` and ``model_version`` name what is served and ``url`` where it is
    loaded from; when ``url`` names a folder of versions, ``model_version`` picks one of them.
    """
    url, name, version = q.required("url"), q.get("model_name"), q.get("model_version")
    folder, url_version = server.registry.store.from_url(url)
    return name or folder, version, folder, url_version or version


# ---------------------------------------------------------------- describing
def _iso(t: float) -> str:
    return datetime.fromtimestamp(t, UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


def _listed(name: str, version: str, ep: Endpoint | Problem, default: bool) -> dict[str, Any]:
    if isinstance(ep, Problem):
        out = {"modelName": name, "version": version, "modelUrl": f"{name}/{version}",
               "status": ep.status.upper(), "default": False}
        if ep.message:
            out["message"] = ep.message
        return out
    return {"modelName": name, "version": version, "modelUrl": ep.source or f"{name}/{version}",
            "status": "READY" if ep.status == "ready" else ep.status.upper(), "kind": ep.servable.kind,
            "default": default}


def _described(name: str, version: str, ep: Endpoint | Problem, default: bool) -> dict[str, Any]:
    url = f"{name}/{version}"
    if isinstance(ep, Problem):
        return {"modelName": name, "version": version, "modelUrl": url, "status": ep.status.capitalize(),
                "message": ep.message, "loadedAtStartup": False, "workerGroups": []}
    b = ep.batcher
    s = b.settings
    workers = [{"id": n + 1, "startTime": _iso(t), "status": "READY"} for n, t in enumerate(b.worker_start_times())]
    extra = {k: v for k, v in ep.servable.describe().items() if k != "path"}
    return {"modelName": name, "version": version, "modelUrl": ep.source or url, "batchSize": s.batch_size,
            "maxBatchDelayMillis": s.max_batch_delay_ms, "maxIdleSeconds": s.max_idle_time, "queueSize": s.max_queue,
            "requestInQueue": b.requests, "status": "Healthy" if ep.status == "ready" else ep.status.capitalize(),
            "loadedAtStartup": ep.at_startup,
            "workerGroups": [{"device": {"deviceType": "cpu", "deviceId": -1}, "minWorkers": s.min_worker,
                              "maxWorkers": s.max_worker, "workers": workers}],
            "default": default, "busyWorkers": b.in_flight, "batches": b.batches, **extra}


def _describe(server: Server, name: str, version: str | None) -> list[dict[str, Any]]:
    rows = [r for r in server.registry.entries(name) if version is None or r[1] == version]
    if not rows:
        server.registry.resolve(name, version)  # raises the precise NotFound
    return [{"workflowName": name, "models": [_described(*r) for r in rows]}]


# ---------------------------------------------------------------- routes
@router.get("/workflows", response_model=ListModelsResponse, responses=_ERR,
            openapi_extra={"parameters": _PAGE_PARAMS})
@router.get("/models", response_model=ListModelsResponse, responses=_ERR,
            openapi_extra={"parameters": _PAGE_PARAMS})
async def list_models(request: Request, server: Server = Depends(server_of)) -> JSON:
    """Every served (and failed or pending) version, ``limit`` at a time."""
    q = Query(request.query_params, ("limit", "next_page_token"))
    limit = q.integer("limit", 100, 1, 1000)
    token = q.get("next_page_token")
    token = "0" if token is None else token
    if not token.isascii() or not token.isdigit() or len(token) > 9:
        raise ParameterError(f"next_page_token {token!r} is not a token this server gave")
    start = int(token)
    rows = server.registry.entries()
    page = [_listed(*r) for r in rows[start:start + limit]]
    out: dict[str, Any] = {"models": page}
    if start + limit < len(rows):
        out["nextPageToken"] = str(start + limit)
    return JSON(out)


_REGISTER_RESPONSES = {**_ERR, 202: {"model": RegisterStatus, "description": "Registration scheduled"}}


@router.post("/workflows", response_model=RegisterStatus, responses=_REGISTER_RESPONSES,
             openapi_extra={"parameters": _REGISTER_PARAMS})
@router.post("/models", response_model=RegisterStatus, responses=_REGISTER_RESPONSES,
             openapi_extra={"parameters": _REGISTER_PARAMS})
async def register_model(request: Request, server: Server = Depends(server_of)) -> JSON:
    """Register a model folder of the store (DJL's register API)."""
    q = Query(request.query_params, _REGISTER_NAMES)
    _engine_device(q)
    name, version, folder, source = _target(server, q)
    settings = _settings(q)
    make_default = q.boolean("default", False)
    synchronous = q.boolean("synchronous", True)
    reg = server.registry
    version, batch = reg.reserve(name, version, settings or None, folder=folder, source=source)
    where = {"folder": folder, "source": source}
    what = "Workflow" if request.url.path.startswith("/workflows") else "Model"
    if not synchronous:
        server.spawn(_register_later(server, name, version, batch, make_default, where))
        return JSON({"status": f'{what} "{name}" registration scheduled.', "modelName": name, "version": version},
                    status_code=202)
    await reg.complete(name, version, batch, make_default=make_default, **where)
    return JSON({"status": f'{what} "{name}" registered.', "modelName": name, "version": version})


async def _register_later(server: Server, name: str, version: str, batch: Any, make_default: bool,
                          where: dict[str, str | None]) -> None:
    try:
        await server.registry.complete(name, version, batch, make_default=make_default, **where)
        log.info("registered %s version %s", name, version)
    except RecseekError as e:
        log.error("registration of %s version %s failed: %s", name, version, e)


@router.get("/workflows/{name}", response_model=list[DescribedWorkflow], responses=_ERR)
@router.get("/models/{name}", response_model=list[DescribedWorkflow], responses=_ERR)
async def describe_model(name: str, server: Server = Depends(server_of)) -> JSON:
    """DJL's describe answer: one workflow with one entry per version."""
    return JSON(_describe(server, name, None))


@router.get("/workflows/{name}/{version}", response_model=list[DescribedWorkflow], responses=_ERR)
@router.get("/models/{name}/{version}", response_model=list[DescribedWorkflow], responses=_ERR)
async def describe_version(name: str, version: str, server: Server = Depends(server_of)) -> JSON:
    """DJL's describe answer for one version."""
    return JSON(_describe(server, name, version))


async def _scale(server: Server, name: str, version: str | None, request: Request) -> JSON:
    q = Query(request.query_params, _SCALE_NAMES)
    server.registry.scale(name, version, **_settings(q))  # no setting: nothing changes
    return JSON({"status": "Worker updated"}, status_code=200 if q.boolean("synchronous", True) else 202)


_SCALE_RESPONSES = {**_ERR, 202: {"model": StatusResponse, "description": "Accepted"}}


@router.put("/workflows/{name}", response_model=StatusResponse, responses=_SCALE_RESPONSES,
            openapi_extra={"parameters": [_NAME, *_SCALE_PARAMS]})
@router.put("/models/{name}", response_model=StatusResponse, responses=_SCALE_RESPONSES,
            openapi_extra={"parameters": [_NAME, *_SCALE_PARAMS]})
async def scale_model(request: Request, server: Server = Depends(server_of)) -> JSON:
    """Change workers or batching of every version of ``name``."""
    return await _scale(server, request.path_params["name"], None, request)


@router.put("/workflows/{name}/{version}", response_model=StatusResponse, responses=_SCALE_RESPONSES,
            openapi_extra={"parameters": [_NAME, _VERSION, *_SCALE_PARAMS]})
@router.put("/models/{name}/{version}", response_model=StatusResponse, responses=_SCALE_RESPONSES,
            openapi_extra={"parameters": [_NAME, _VERSION, *_SCALE_PARAMS]})
async def scale_version(request: Request, server: Server = Depends(server_of)) -> JSON:
    """Change workers or batching of one version."""
    return await _scale(server, request.path_params["name"], request.path_params["version"], request)


@router.put("/models/{name}/{version}/set-default", response_model=RegisterStatus, responses=_ERR)
async def set_default(name: str, version: str, server: Server = Depends(server_of)) -> JSON:
    """Make ``version`` answer the requests that name no version."""
    server.registry.set_default(name, version)
    return JSON({"status": "Default version set", "modelName": name, "version": version})


@router.delete("/workflows/{name}", response_model=UnregisterResponse, responses=_ERR)
@router.delete("/models/{name}", response_model=UnregisterResponse, responses=_ERR)
async def unregister_all(name: str, server: Server = Depends(server_of)) -> JSON:
    """Stop serving every version of ``name`` (queued requests are answered first)."""
    gone = await server.registry.unregister(name)
    return JSON({"status": f'Workflow "{name}" unregistered', "versions": gone})


@router.delete("/workflows/{name}/{version}", response_model=UnregisterResponse, responses=_ERR)
@router.delete("/models/{name}/{version}", response_model=UnregisterResponse, responses=_ERR)
async def unregister_version(name: str, version: str, server: Server = Depends(server_of)) -> JSON:
    """Stop serving one version (a failed one is forgotten)."""
    gone = await server.registry.unregister(name, version)
    return JSON({"status": f'Workflow "{name}" version "{version}" unregistered', "versions": gone})


@router.post("/models/{name}/retrain", responses=_ERR)
async def retrain_model(name: str, server: Server = Depends(server_of)) -> JSON:
    """Refit from the base data plus stored feedback; the new version becomes the default."""
    from ..servables import NotFound

    spec = server.config.spec(name)
    if spec is None or spec.kind != "model":
        raise NotFound(f"no model named {name!r} is configured ({server.config.source}, [[models]])")
    return JSON(await server.retrain_and_register(name))
