"""The HTTP engine: inference, management, feedback, health and metrics routes.

:func:`create_app` builds a FastAPI application from a :class:`ServeConfig`; at start it
opens the feedback store, loads the configured models and indexes from the model store
and starts their batchers (and the scheduled retraining jobs). See ``docs/serving.md``.

Errors are JSON ``{"error": "<one sentence>", "status": <code>}``: 404 for unknown
models, versions, users and items; 422 for invalid input; 401 for a missing or wrong
bearer token; 409 for conflicts; 413 for bodies over the limit; 503 (``Retry-After``)
when a queue is full; 504 when a request times out.
"""

from __future__ import annotations

import asyncio
import gc
import hmac
import json
import logging
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager
from typing import Any

import numpy as np
from fastapi import Depends, FastAPI, Query, Request
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import Response

from ..errors import DataError, ModelFileError, ParameterError, RecseekError, UnsupportedError
from .batching import Overloaded, RequestTimeout
from .config import BATCH_KEYS, ServeConfig
from .metrics import Metrics
from .registry import Endpoint, ServingRegistry, retrain
from .schemas import (
    DescribeResponse,
    ErrorResponse,
    FeedbackRequest,
    FeedbackResponse,
    PredictRatingRequest,
    PredictRatingResponse,
    RecommendRequest,
    RecommendResponse,
    RegisterResponse,
    SearchRequest,
    SearchResponse,
    SimilarResponse,
)
from .servables import Conflict, ModelServable, NotFound
from .store import FeedbackEvent, FeedbackStore

log = logging.getLogger("recseek.serving")

try:  # orjson is part of the serve extra; the standard library is the fallback
    import orjson

    def _dumps(obj: Any) -> bytes:
        return orjson.dumps(obj, option=orjson.OPT_SERIALIZE_NUMPY)
except ImportError:  # pragma: no cover - depends on the environment
    def _dumps(obj: Any) -> bytes:
        return json.dumps(obj, separators=(",", ":")).encode()


class JSON(Response):
    """A JSON response rendered with orjson."""

    media_type = "application/json"

    def render(self, content: Any) -> bytes:
        return _dumps(content)


class Unauthorized(RecseekError):
    """Missing or wrong bearer token (HTTP 401)."""


class BodyTooLarge(RecseekError):
    """Request body over ``max_body_bytes`` (HTTP 413)."""


_STATUS: list[tuple[type[BaseException], int]] = [
    (NotFound, 404), (Unauthorized, 401), (Conflict, 409), (Overloaded, 503), (RequestTimeout, 504),
    (BodyTooLarge, 413), (UnsupportedError, 400), (ModelFileError, 422), (ParameterError, 422), (DataError, 422),
    (RecseekError, 422),
]


def _status_of(exc: BaseException) -> int:
    for cls, code in _STATUS:
        if isinstance(exc, cls):
            return code
    return 500


def _error_headers(exc: BaseException) -> dict[str, str] | None:
    if isinstance(exc, Overloaded):
        return {"Retry-After": str(exc.retry_after)}
    if isinstance(exc, Unauthorized):
        return {"WWW-Authenticate": "Bearer"}
    return None


def _error(status: int, message: str, headers: dict[str, str] | None = None) -> JSON:
    return JSON({"error": message, "status": status}, status_code=status, headers=headers)


_ERRORS = {404: {"model": ErrorResponse}, 422: {"model": ErrorResponse}}
_AUTH_ERRORS = {**_ERRORS, 401: {"model": ErrorResponse}}
_INFER_ERRORS = {**_ERRORS, 503: {"model": ErrorResponse}, 504: {"model": ErrorResponse}}


# ---------------------------------------------------------------- ASGI middleware
class _Guard:
    """Body size limit and request metrics, as plain ASGI (no per-request task)."""

    def __init__(self, app: Any, max_body: int, metrics: Metrics,
                 fast_recommend: Callable[[str, Any], Awaitable[dict]] | None = None) -> None:
        self.app = app
        self.max_body = max_body
        self.metrics = metrics
        self.fast_recommend = fast_recommend

    async def __call__(self, scope: dict, receive: Callable, send: Callable) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        t0 = time.perf_counter()
        path = scope["path"]
        if self.fast_recommend is not None and scope["method"] == "GET" and path.startswith("/recommend/"):
            model = path[11:]
            if model and "/" not in model:
                await self._fast(self.fast_recommend, model, scope, send, t0)
                return
        status = [500]
        for k, v in scope.get("headers", ()):
            if k == b"content-length":
                try:
                    too_big = int(v) > self.max_body
                except ValueError:
                    too_big = False
                if too_big:
                    await _send_error(send, 413, f"request body over the limit of {self.max_body} bytes")
                    self._observe(scope, 413, t0)
                    return
                break
        seen = [0]
        over = [False]
        max_body = self.max_body

        async def limited_receive() -> dict:
            msg = await receive()
            if msg["type"] == "http.request":
                seen[0] += len(msg.get("body", b""))
                if seen[0] > max_body:
                    over[0] = True
                    raise BodyTooLarge(f"request body over the limit of {max_body} bytes")
            return msg

        async def tracked_send(msg: dict) -> None:
            if over[0]:  # whatever the app answers to a truncated body, the client gets a 413
                if msg["type"] == "http.response.start":
                    status[0] = 413
                    await _send_error(send, 413, f"request body over the limit of {max_body} bytes")
                return
            if msg["type"] == "http.response.start":
                status[0] = msg["status"]
            await send(msg)

        try:
            await self.app(scope, limited_receive, tracked_send)
        finally:
            self._observe(scope, status[0], t0)

    async def _fast(self, handler: Callable[[str, Any], Awaitable[dict]], model: str, scope: dict, send: Callable,
                    t0: float) -> None:
        """GET /recommend/{model} straight from ASGI (same handler and errors as the routed one)."""
        from starlette.datastructures import QueryParams

        headers: dict[str, str] | None = None
        try:
            body = _dumps(await handler(model, QueryParams(scope["query_string"])))
            status = 200
        except RecseekError as exc:
            status = _status_of(exc)
            headers = _error_headers(exc)
            body = _dumps({"error": " ".join(str(exc).split()), "status": status})
        except Exception as exc:  # same as the application's handler of unexpected errors
            log.exception("internal error", exc_info=exc)
            status = 500
            body = _dumps({"error": "internal server error", "status": 500})
        raw = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
        if headers:
            raw += [(k.lower().encode(), v.encode()) for k, v in headers.items()]
        await send({"type": "http.response.start", "status": status, "headers": raw})
        await send({"type": "http.response.body", "body": body})
        self.metrics.request_latency.observe(("/recommend/{model}", "GET"), time.perf_counter() - t0)
        self.metrics.responses.inc(("/recommend/{model}", str(status)))

    def _observe(self, scope: dict, status: int, t0: float) -> None:
        route = scope.get("route")
        label = getattr(route, "path", None) or "unmatched"
        self.metrics.request_latency.observe((label, scope.get("method", "")), time.perf_counter() - t0)
        self.metrics.responses.inc((label, str(status)))


async def _send_error(send: Callable, status: int, message: str) -> None:
    body = _dumps({"error": message, "status": status})
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]})
    await send({"type": "http.response.body", "body": body})


# ---------------------------------------------------------------- server state
class Server:
    """Everything the routes share: config, registry, feedback store, caches."""

    FOLDIN_CACHE = 10_000

    def __init__(self, config: ServeConfig, feedback: FeedbackStore | None = None) -> None:
        self.config = config
        self.metrics = Metrics()
        # batches run in these threads; each limits recseek's multi-core kernels to kernel_threads
        # (parallelism comes from several batch workers, and a busy machine makes short
        # multi-threaded kernel launches slow)
        self.executor = ThreadPoolExecutor(max_workers=16, thread_name_prefix="recseek-serve",
                                           initializer=_limit_kernel_threads, initargs=(config.kernel_threads,))
        self.registry = ServingRegistry(config, self.executor, self.metrics)
        self.feedback = feedback
        self._own_feedback = feedback is None
        self._foldin: OrderedDict[str, list[FeedbackEvent]] = OrderedDict()
        self._tasks: list[asyncio.Task] = []
        self._retrain_locks: dict[str, asyncio.Lock] = {}
        self.started = False

    async def start(self) -> None:
        loop = asyncio.get_running_loop()
        _limit_kernel_threads(self.config.kernel_threads)  # cheap batches run on this thread
        if self.feedback is None:
            self.feedback = await loop.run_in_executor(self.executor, FeedbackStore, self.config.feedback_url)
        for spec in self.config.servables:
            await self.registry.register(spec.name, spec.version)
            log.info("serving %s %s", spec.kind, spec.name)
        for spec in self.config.servables:
            if spec.retrain is not None and spec.retrain.interval_s > 0:
                self._tasks.append(asyncio.create_task(self._retrain_every(spec.name, spec.retrain.interval_s)))
        # what is loaded now lives as long as the server: keep it out of the cyclic garbage
        # collector, whose full passes over every library object would stall requests
        gc.collect()
        gc.freeze()
        self.started = True

    async def stop(self) -> None:
        for t in self._tasks:
            t.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        await self.registry.close()
        if self._own_feedback and self.feedback is not None:
            self.feedback.close()
        self.executor.shutdown(wait=False, cancel_futures=True)

    # ------------------------------------------------------------ feedback and fold-in
    async def user_events(self, user: str) -> list[FeedbackEvent]:
        cached = self._foldin.get(user)
        if cached is not None:
            self._foldin.move_to_end(user)
            return cached
        assert self.feedback is not None
        events = await asyncio.get_running_loop().run_in_executor(self.executor, self.feedback.events_for_user, user)
        self._foldin[user] = events
        if len(self._foldin) > self.FOLDIN_CACHE:
            self._foldin.popitem(last=False)
        return events

    async def add_feedback(self, events: list[FeedbackEvent]) -> int:
        assert self.feedback is not None
        n = await asyncio.get_running_loop().run_in_executor(self.executor, self.feedback.add, events)
        for e in events:
            self._foldin.pop(str(e.user), None)
        return n

    # ------------------------------------------------------------ retraining
    async def retrain_and_register(self, name: str) -> dict[str, Any]:
        lock = self._retrain_locks.setdefault(name, asyncio.Lock())
        async with lock:
            loop = asyncio.get_running_loop()
            version, _, n = await loop.run_in_executor(self.executor, retrain, self.config, name, self.feedback)
            await self.registry.register(name, version, make_default=True)
            # keep the new version and the one before it; drain and drop older ones
            desc = self.registry.describe(name)
            versions = [v["version"] for v in desc["versions"]]
            for old in versions[:-2]:
                await self.registry.unregister(name, old)
            return {"name": name, "version": version, "events": n}

    async def _retrain_every(self, name: str, interval: float) -> None:
        last = -1
        while True:
            await asyncio.sleep(interval)
            try:
                count = await asyncio.get_running_loop().run_in_executor(self.executor, self.feedback.count)
                if count == last:
                    continue
                info = await self.retrain_and_register(name)
                last = count
                log.info("retrained %s: version %s from %d events", name, info["version"], info["events"])
            except asyncio.CancelledError:
                raise
            except Exception as e:  # keep serving; report and try again next interval
                log.error("scheduled retraining of %s failed: %s", name, e)


# ---------------------------------------------------------------- query strings
class _Query:
    """Query parameters of a request, checked by hand (unknown names are refused)."""

    __slots__ = ("qp",)

    def __init__(self, params: Any, names: tuple[str, ...]) -> None:
        self.qp = params
        for key in self.qp:
            if key not in names:
                raise ParameterError(f"unknown query parameter {key!r} (valid: {', '.join(names)})")

    def get(self, name: str) -> str | None:
        return self.qp.get(name)

    def required(self, name: str) -> str:
        v = self.qp.get(name)
        if v is None or v == "":
            raise ParameterError(f"query parameter {name!r} is required")
        return v

    def integer(self, name: str, default: int, lo: int, hi: int) -> int:
        v = self.qp.get(name)
        if v is None:
            return default
        try:
            n = int(v)
        except ValueError:
            raise ParameterError(f"query parameter {name!r} must be an integer, got {v!r}") from None
        if not lo <= n <= hi:
            raise ParameterError(f"query parameter {name!r} must be in {lo}..{hi}, got {n}")
        return n

    def boolean(self, name: str, default: bool) -> bool:
        v = self.qp.get(name)
        if v is None:
            return default
        low = v.lower()
        if low in ("true", "1", "yes", "on"):
            return True
        if low in ("false", "0", "no", "off"):
            return False
        raise ParameterError(f"query parameter {name!r} must be true or false, got {v!r}")

    def many(self, name: str) -> list[str] | None:
        vs = self.qp.getlist(name)
        return vs or None


def _param(name: str, where: str, typ: str, description: str, required: bool = False, **schema: Any) -> dict:
    return {"name": name, "in": where, "required": required, "description": description,
            "schema": {"type": typ, **schema}}


def _params(*items: dict) -> list[dict]:
    return list(items)


_PATH_MODEL = _param("model", "path", "string", "Model name.", True)
_RECOMMEND_NAMES = ("user", "k", "exclude_seen", "exclude", "filter", "version")
_RECOMMEND_QUERY = (
    _param("user", "query", "string", "User id.", True),
    _param("k", "query", "integer", "Number of items (1..1000).", default=10, minimum=1, maximum=1000),
    _param("exclude_seen", "query", "boolean", "Never return items the user interacted with.", default=True),
    {**_param("exclude", "query", "array", "Item ids to exclude (repeat or comma-separate)."),
     "schema": {"type": "array", "items": {"type": "string"}}},
    {**_param("filter", "query", "array", "Item filter field:value (repeatable; same field = any of)."),
     "schema": {"type": "array", "items": {"type": "string"}}},
    _param("version", "query", "string", "Model version (default: the default version)."),
)
_SIMILAR_QUERY = (
    _param("item", "query", "string", "Item id.", True),
    _param("k", "query", "integer", "Number of items (1..1000).", default=10, minimum=1, maximum=1000),
    _param("version", "query", "string", "Model version (default: the default version)."),
)


# ---------------------------------------------------------------- helpers
def _limit_kernel_threads(n: int) -> None:
    if n > 0:
        from .._numba import set_num_threads

        set_num_threads(n)


def _parse_filter(items: list[str] | None) -> dict[str, list[str]] | None:
    if not items:
        return None
    out: dict[str, list[str]] = {}
    for it in items:
        field, sep, value = it.partition(":")
        if not sep or not field or not value:
            raise ParameterError(f"filter {it!r} must look like field:value")
        out.setdefault(field, []).append(value)
    return out


def _split_ids(items: list[str] | None) -> list[str] | None:
    if not items:
        return None
    return [x for it in items for x in it.split(",") if x]


def _check_filter(flt: dict[str, Any] | None) -> None:
    if flt is None:
        return
    for field, v in flt.items():
        values = v if isinstance(v, list) else [v]
        for x in values:
            if not isinstance(x, str | int | float) or isinstance(x, bool):
                raise ParameterError(f"filter {field!r}: values must be strings or numbers")


def _scored(res: dict[str, list]) -> list[dict[str, Any]]:
    return [{"item": i, "score": s} for i, s in zip(res["items"], res["scores"], strict=True)]


async def _recommend_one(server: Server, ep: Endpoint, user: Any, k: int, exclude_seen: bool,
                         exclude_idx: np.ndarray | None) -> asyncio.Future | Awaitable[Any]:
    s: ModelServable = ep.servable  # type: ignore[assignment]
    u = s.user_index(user)
    if u >= 0:
        return ep.batcher.submit("recommend", {"user": u, "k": k, "exclude_seen": exclude_seen,
                                               "exclude": exclude_idx})
    events = await server.user_events(str(user))
    if not events:
        raise NotFound(f"unknown user {user!r} for model {s.name} version {s.version} (no training data or feedback)")
    idx = s.item_indices([e.item for e in events])
    known = idx >= 0
    if not known.any():
        raise NotFound(f"user {user!r} is unknown to model {s.name} and none of their feedback items are")
    items = idx[known]
    values = np.asarray([e.value for e in events], dtype=np.float32)[known]
    # the latest value of an item counts (events are oldest first)
    _, last = np.unique(items[::-1], return_index=True)
    keep = len(items) - 1 - last
    return ep.batcher.submit("recommend_new", {"items": items[keep], "values": values[keep], "k": k,
                                               "exclude": exclude_idx})


# ---------------------------------------------------------------- application
def create_app(config: ServeConfig, *, feedback: FeedbackStore | None = None) -> FastAPI:
    """The FastAPI application serving ``config`` (optionally with an open feedback store)."""
    server = Server(config, feedback)

    @asynccontextmanager
    async def lifespan(app: FastAPI):  # noqa: ANN202 - FastAPI lifespan
        try:
            await server.start()
        except RecseekError as e:
            log.error("cannot start serving: %s", e)
            await server.stop()
            raise
        try:
            yield
        finally:
            await server.stop()

    app = FastAPI(title="recseek serving", version=_version(), lifespan=lifespan, default_response_class=JSON,
                  description="Recommendation and search inference, model management and feedback.")
    app.state.server = server

    # ------------------------------------------------------------ errors
    @app.exception_handler(RecseekError)
    async def _recseek_error(_: Request, exc: RecseekError) -> JSON:
        return _error(_status_of(exc), " ".join(str(exc).split()), _error_headers(exc))

    @app.exception_handler(RequestValidationError)
    async def _validation_error(_: Request, exc: RequestValidationError) -> JSON:
        errs = exc.errors()
        parts = []
        for e in errs[:3]:
            loc = ".".join(str(x) for x in e.get("loc", ()) if x != "body") or "body"
            parts.append(f"{loc}: {e.get('msg', 'invalid')}")
        msg = "invalid request: " + "; ".join(parts)
        if len(errs) > 3:
            msg += f" (and {len(errs) - 3} more)"
        return _error(422, msg)

    @app.exception_handler(StarletteHTTPException)
    async def _http_error(_: Request, exc: StarletteHTTPException) -> JSON:
        msg = exc.detail if isinstance(exc.detail, str) else "request failed"
        if exc.status_code == 404 and msg == "Not Found":
            msg = "no such route"
        return _error(exc.status_code, msg, getattr(exc, "headers", None))

    @app.exception_handler(Exception)
    async def _internal(_: Request, exc: Exception) -> JSON:
        log.exception("internal error", exc_info=exc)
        return _error(500, "internal server error")

    # ------------------------------------------------------------ auth
    token = config.token

    async def require_token(request: Request) -> None:
        if not token:
            return
        header = request.headers.get("authorization", "")
        scheme, _, value = header.partition(" ")
        if scheme.lower() != "bearer" or not value:
            raise Unauthorized("this endpoint needs an Authorization: Bearer <token> header")
        if not hmac.compare_digest(value.strip().encode(), token.encode()):
            raise Unauthorized("the bearer token is not valid")

    auth = [Depends(require_token)]

    # ------------------------------------------------------------ health and metrics
    @app.get("/ping", tags=["health"])
    async def ping() -> JSON:
        ok = server.started and server.registry.is_ready()
        return JSON({"status": "Healthy" if ok else "Unhealthy"}, status_code=200 if ok else 503)

    @app.get("/v2/health/live", tags=["health"])
    async def live() -> JSON:
        return JSON({"live": True})

    @app.get("/v2/health/ready", tags=["health"])
    async def ready() -> JSON:
        ok = server.started and server.registry.is_ready()
        return JSON({"ready": ok}, status_code=200 if ok else 503)

    @app.get("/metrics", tags=["health"])
    async def metrics() -> Response:
        return Response(server.metrics.render(), media_type="text/plain; version=0.0.4; charset=utf-8")

    # ------------------------------------------------------------ inference
    reg = server.registry

    # The GET routes parse their query strings by hand: FastAPI's per-parameter validation
    # costs more than the rest of the request; the OpenAPI description is given explicitly.
    @app.get("/recommend/{model}", tags=["inference"], response_model=RecommendResponse, responses=_INFER_ERRORS,
             openapi_extra={"parameters": _params(_PATH_MODEL, *_RECOMMEND_QUERY)})
    async def recommend_get(request: Request) -> JSON:
        """Top-k items for one user: ?user=&k=&exclude_seen=&exclude=&filter=field:value&version=."""
        return JSON(await recommend_query(request.path_params["model"], request.query_params))

    async def recommend_query(model: str, params: Any) -> dict[str, Any]:
        q = _Query(params, _RECOMMEND_NAMES)
        user = q.required("user")
        k = q.integer("k", 10, 1, 1000)
        exclude_seen = q.boolean("exclude_seen", True)
        exclude, flt = q.many("exclude"), q.many("filter")
        ep = reg.resolve(model, q.get("version"), "model")
        s: ModelServable = ep.servable  # type: ignore[assignment]
        ex = s.exclusion(_split_ids(exclude), _parse_filter(flt)) if (exclude or flt) else None
        fut = await _recommend_one(server, ep, user, k, exclude_seen, ex)
        res = await fut
        return {"model": model, "version": ep.version, "user": user, "items": _scored(res)}

    @app.post("/recommend/{model}", tags=["inference"], response_model=RecommendResponse, responses=_INFER_ERRORS)
    async def recommend_post(model: str, body: RecommendRequest, version: str | None = None) -> JSON:
        ep = reg.resolve(model, version, "model")
        s: ModelServable = ep.servable  # type: ignore[assignment]
        _check_filter(body.filter)
        ex = s.exclusion(body.exclude, body.filter) if (body.exclude or body.filter) else None
        futs = [await _recommend_one(server, ep, u, body.k, body.exclude_seen, ex) for u in body.users]
        results = await asyncio.gather(*futs)
        return JSON({"model": model, "version": ep.version,
                     "results": [{"user": u, "items": _scored(r)} for u, r in zip(body.users, results, strict=True)]})

    @app.get("/similar-items/{model}", tags=["inference"], response_model=SimilarResponse, responses=_INFER_ERRORS,
             openapi_extra={"parameters": _params(_PATH_MODEL, *_SIMILAR_QUERY)})
    async def similar_items_get(request: Request) -> JSON:
        """The k items most similar to one item: ?item=&k=&version=."""
        q = _Query(request.query_params, ("item", "k", "version"))
        return await similar_items(request.path_params["model"], q.required("item"), q.integer("k", 10, 1, 1000),
                                   q.get("version"))

    async def similar_items(model: str, item: str, k: int, version: str | None) -> JSON:
        ep = reg.resolve(model, version, "model")
        s: ModelServable = ep.servable  # type: ignore[assignment]
        i = s.require_item(item)
        res = await ep.batcher.submit("similar", {"item": i, "k": k})
        return JSON({"model": model, "version": ep.version, "item": item, "items": _scored(res)})

    async def _predict(model: str, version: str | None, body: PredictRatingRequest) -> JSON:
        ep = reg.resolve(model, version, "model")
        s: ModelServable = ep.servable  # type: ignore[assignment]
        if body.pairs is not None:
            if body.user is not None or body.items is not None:
                raise ParameterError("give either pairs or user and items, not both")
            raw_users = [p.user for p in body.pairs]
            raw_items = [p.item for p in body.pairs]
        elif body.user is not None and body.items:
            raw_users = [body.user] * len(body.items)
            raw_items = list(body.items)
        else:
            raise ParameterError("predict-rating needs pairs, or user and a non-empty items list")
        if not raw_users:
            raise ParameterError("pairs must not be empty")
        users = s.users.indices(raw_users, missing="negative")
        items = s.item_indices(raw_items)
        if (users < 0).any():
            bad = raw_users[int(np.flatnonzero(users < 0)[0])]
            raise NotFound(f"unknown user {bad!r} for model {s.name} version {s.version}")
        if (items < 0).any():
            bad = raw_items[int(np.flatnonzero(items < 0)[0])]
            raise NotFound(f"unknown item {bad!r} for model {s.name} version {s.version}")
        if s.task != "rating":
            raise UnsupportedError(f"model {s.name} ({s.algorithm}) ranks items and does not predict ratings")
        ratings = await ep.batcher.submit("predict", {"users": users, "items": items})
        return JSON({"model": model, "version": ep.version,
                     "predictions": [{"user": u, "item": i, "rating": r}
                                     for u, i, r in zip(raw_users, raw_items, ratings, strict=True)]})

    @app.post("/predict-rating/{model}", tags=["inference"], response_model=PredictRatingResponse,
              responses=_INFER_ERRORS)
    async def predict_rating(model: str, body: PredictRatingRequest, version: str | None = None) -> JSON:
        return await _predict(model, version, body)

    async def _search(index: str, version: str | None, body: SearchRequest) -> JSON:
        ep = reg.resolve(index, version or body.version, "index")
        s = ep.servable
        _check_filter_search(body.filter)
        personal = None
        if body.user is not None:
            if not getattr(s, "personalize", None):
                raise ParameterError(f"user: index {index} has no personalize model configured")
            mep = reg.resolve(s.personalize, None, "model")
            ms: ModelServable = mep.servable  # type: ignore[assignment]
            if ms.user_index(body.user) < 0:
                raise NotFound(f"unknown user {body.user!r} for model {ms.name} version {ms.version}")
            personal = (ms, body.user, body.personalization)  # re-ranked by ItemSearch in the batch
        s.pick(body.hybrid)
        res = await ep.batcher.submit("search", {"query": body.query, "k": body.k, "filter": body.filter,
                                                 "hybrid": body.hybrid, "personal": personal})
        hits = [{"id": i, "score": sc} for i, sc in zip(res["items"], res["scores"], strict=True)]
        return JSON({"index": index, "version": ep.version, "hits": hits})

    @app.post("/search/{index}", tags=["inference"], response_model=SearchResponse, responses=_INFER_ERRORS)
    async def search(index: str, body: SearchRequest) -> JSON:
        return await _search(index, None, body)

    async def _predictions(name: str, version: str | None, request: Request) -> JSON:
        ep = reg.resolve(name, version)
        try:
            raw = await request.json()
        except (json.JSONDecodeError, UnicodeDecodeError):
            raise ParameterError("the request body must be a JSON object") from None
        if not isinstance(raw, dict):
            raise ParameterError("the request body must be a JSON object")
        from pydantic import ValidationError

        try:
            if ep.servable.kind == "index":
                return await _search(name, ep.version, SearchRequest.model_validate({**raw, "version": None}))
            if "pairs" in raw or ("user" in raw and "items" in raw):
                return await _predict(name, ep.version, PredictRatingRequest.model_validate(raw))
            if "item" in raw:
                extra = set(raw) - {"item", "k"}
                if extra:
                    raise ParameterError(f"unknown field {sorted(extra)[0]!r} for similar items")
                return await similar_items(name, str(raw["item"]), _k(raw.get("k", 10)), ep.version)
            if "user" in raw:
                body = RecommendRequest.model_validate({**{k: v for k, v in raw.items() if k != "user"},
                                                        "users": [raw["user"]]})
                out = await recommend_post(name, body, ep.version)
                data = json.loads(out.body)
                first = data["results"][0]
                return JSON({"model": name, "version": ep.version, "user": first["user"], "items": first["items"]})
            if "users" in raw:
                return await recommend_post(name, RecommendRequest.model_validate(raw), ep.version)
        except ValidationError as e:
            raise RequestValidationError(e.errors()) from None
        raise ParameterError("the body must hold user, users, item, pairs or user and items (or query for an index)")

    @app.post("/predictions/{model}", tags=["inference"], responses=_INFER_ERRORS)
    async def predictions(model: str, request: Request) -> JSON:
        """DJL-compatible inference: the body decides the operation (see docs/serving.md)."""
        return await _predictions(model, None, request)

    @app.post("/predictions/{model}/{version}", tags=["inference"], responses=_INFER_ERRORS)
    async def predictions_version(model: str, version: str, request: Request) -> JSON:
        return await _predictions(model, version, request)

    # ------------------------------------------------------------ feedback
    @app.post("/feedback", tags=["feedback"], dependencies=auth, response_model=FeedbackResponse,
              responses=_AUTH_ERRORS)
    async def feedback_post(body: FeedbackRequest) -> JSON:
        if body.events is not None:
            if body.user is not None or body.item is not None:
                raise ParameterError("give either events or user and item, not both")
            events = [FeedbackEvent(str(e.user), str(e.item), e.value, e.timestamp) for e in body.events]
        elif body.user is not None and body.item is not None:
            events = [FeedbackEvent(str(body.user), str(body.item), body.value, body.timestamp)]
        else:
            raise ParameterError("feedback needs user and item (or a list of events)")
        for n, e in enumerate(events):
            if not np.isfinite(e.value) or (e.timestamp is not None and not np.isfinite(e.timestamp)):
                raise ParameterError(f"feedback event {n}: value and timestamp must be finite numbers")
        n = await server.add_feedback(events)
        return JSON({"stored": n})

    # ------------------------------------------------------------ management
    @app.get("/models", tags=["management"], dependencies=auth, responses=_AUTH_ERRORS)
    async def list_models() -> JSON:
        return JSON({"models": reg.listing(), "store": sorted(reg.store.names())})

    @app.post("/models", tags=["management"], dependencies=auth, response_model=RegisterResponse,
              responses={**_AUTH_ERRORS, 409: {"model": ErrorResponse}})
    async def register_model(
        name: str = Query(..., description="Name in the model store."),
        version: str | None = Query(None, description="Version (default: the latest in the store)."),
        default: bool = Query(False, description="Make it the default version at once."),
        batch_size: int | None = Query(None, ge=1), max_batch_delay_ms: float | None = Query(None, ge=0),
        max_queue: int | None = Query(None, ge=1), min_worker: int | None = Query(None, ge=1),
        max_worker: int | None = Query(None, ge=1),
    ) -> JSON:
        settings = {k: v for k, v in {"batch_size": batch_size, "max_batch_delay_ms": max_batch_delay_ms,
                                      "max_queue": max_queue, "min_worker": min_worker,
                                      "max_worker": max_worker}.items() if v is not None}
        ep = await reg.register(name, version, settings=settings or None, make_default=default)
        desc = reg.describe(name)
        return JSON({"status": "registered", "name": name, "version": ep.version,
                     "default_version": desc["default_version"]})

    @app.get("/models/{name}", tags=["management"], dependencies=auth, response_model=DescribeResponse,
             responses=_AUTH_ERRORS)
    async def describe_model(name: str) -> JSON:
        return JSON(reg.describe(name))

    async def _scale(name: str, version: str | None, request: Request) -> JSON:
        params = dict(request.query_params)
        unknown = set(params) - set(BATCH_KEYS)
        if unknown:
            raise ParameterError(f"unknown setting {sorted(unknown)[0]!r} (valid: {', '.join(BATCH_KEYS)})")
        if not params:
            raise ParameterError(f"give at least one of {', '.join(BATCH_KEYS)}")
        settings: dict[str, Any] = {}
        for k, v in params.items():
            try:
                settings[k] = float(v) if k == "max_batch_delay_ms" else int(v)
            except ValueError:
                raise ParameterError(f"{k} must be a number, got {v!r}") from None
        reg.scale(name, version, **settings)
        return JSON(reg.describe(name))

    @app.put("/models/{name}", tags=["management"], dependencies=auth, response_model=DescribeResponse,
             responses=_AUTH_ERRORS)
    async def scale_model(name: str, request: Request) -> JSON:
        """Change batching/workers of every version: ?batch_size=&max_batch_delay_ms=&min_worker=&max_worker=."""
        return await _scale(name, None, request)

    @app.put("/models/{name}/{version}", tags=["management"], dependencies=auth, response_model=DescribeResponse,
             responses=_AUTH_ERRORS)
    async def scale_version(name: str, version: str, request: Request) -> JSON:
        return await _scale(name, version, request)

    @app.put("/models/{name}/{version}/set-default", tags=["management"], dependencies=auth,
             responses=_AUTH_ERRORS)
    async def set_default(name: str, version: str) -> JSON:
        reg.set_default(name, version)
        return JSON({"status": "default version set", "name": name, "default_version": version})

    @app.delete("/models/{name}", tags=["management"], dependencies=auth, responses=_AUTH_ERRORS)
    async def unregister_all(name: str) -> JSON:
        gone = await reg.unregister(name)
        return JSON({"status": "unregistered", "name": name, "versions": gone})

    @app.delete("/models/{name}/{version}", tags=["management"], dependencies=auth, responses=_AUTH_ERRORS)
    async def unregister_version(name: str, version: str) -> JSON:
        gone = await reg.unregister(name, version)
        return JSON({"status": "unregistered", "name": name, "versions": gone})

    @app.post("/models/{name}/retrain", tags=["management"], dependencies=auth, responses=_AUTH_ERRORS)
    async def retrain_model(name: str) -> JSON:
        """Refit from the base data plus stored feedback; the new version becomes the default."""
        return JSON(await server.retrain_and_register(name))

    app.add_middleware(_Guard, max_body=config.max_body_bytes, metrics=server.metrics,
                       fast_recommend=recommend_query if config.fast_path else None)
    return app


def _check_filter_search(flt: dict[str, Any] | None) -> None:
    if flt is not None and not isinstance(flt, dict):
        raise ParameterError("filter must be an object")


def _k(v: Any) -> int:
    if isinstance(v, bool) or not isinstance(v, int) or not 1 <= v <= 1000:
        raise ParameterError(f"k must be an integer in 1..1000, got {v!r}")
    return v


def _version() -> str:
    from .. import __version__

    return __version__
