"""The HTTP engine: :func:`create_app` builds the FastAPI application of a :class:`ServeConfig`.

The routes live in one router per concern (:mod:`.routes`: inference, DJL management,
KServe's Open Inference Protocol, feedback, health) sharing one :class:`~.state.Server`.
At start the server opens the feedback store, loads and warms every configured version
(a failing one is logged, shown as failed and skipped) and starts the batchers and the
scheduled retraining jobs. See ``docs/serving.md``.

Errors are DJL's ``{"code", "type", "message"}`` (OIP's ``{"error"}`` under ``/v2``): 404
for unknown models, versions, users and items; 422 for invalid input (400 under ``/v2``);
401 for a missing or wrong bearer token; 403 for a refused origin; 409 for conflicts; 413
for bodies over the limit; 431 for oversized headers; 503 (``Retry-After``) when a queue is
full; 504 when a request times out.
"""

from __future__ import annotations

import logging
from contextlib import asynccontextmanager
from functools import partial

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException

from ..errors import RecseekError
from . import routes
from .config import ServeConfig
from .http import JSON, Guard, error_headers, error_response, http_kind, is_oip, status_of
from .state import Server
from .store import FeedbackStore

__all__ = ["create_app"]

log = logging.getLogger("recseek.serving")


def _answer(request: Request, status: int, message: str, kind: str,
            headers: dict[str, str] | None = None) -> JSON:
    oip_route = is_oip(request.url.path)
    if oip_route and status == 422:
        status = 400  # OIP clients expect 400 for a bad request
    return error_response(status, message, kind, oip=oip_route, headers=headers)


def _allowed_methods(request: Request) -> list[str]:
    """Every method some route of the application answers at this path."""
    methods: set[str] = set()
    for route in request.app.routes:
        regex = getattr(route, "path_regex", None)
        if regex is not None and regex.match(request.url.path) and getattr(route, "methods", None):
            methods |= set(route.methods)
    return sorted(methods)


def _install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(RecseekError)
    async def _recseek_error(request: Request, exc: RecseekError) -> JSON:
        return _answer(request, status_of(exc), str(exc), type(exc).__name__, error_headers(exc))

    @app.exception_handler(RequestValidationError)
    async def _validation_error(request: Request, exc: RequestValidationError) -> JSON:
        errs = exc.errors()
        parts = []
        for e in errs[:3]:
            loc = ".".join(str(x) for x in e.get("loc", ()) if x != "body") or "body"
            parts.append(f"{loc}: {e.get('msg', 'invalid')}")
        msg = "invalid request: " + "; ".join(parts)
        if len(errs) > 3:
            msg += f" (and {len(errs) - 3} more)"
        return _answer(request, 422, msg, "InvalidRequest")

    @app.exception_handler(StarletteHTTPException)
    async def _http_error(request: Request, exc: StarletteHTTPException) -> JSON:
        msg = exc.detail if isinstance(exc.detail, str) else "request failed"
        headers = getattr(exc, "headers", None)
        if exc.status_code == 404 and msg == "Not Found":
            msg = "no such route"
        if exc.status_code == 405:
            allowed = _allowed_methods(request)
            headers = {**(headers or {}), "Allow": ", ".join(allowed)}
            msg = f"{request.method} is not allowed here (allowed: {', '.join(allowed)})"
        return _answer(request, exc.status_code, msg, http_kind(exc.status_code), headers)

    @app.exception_handler(RecursionError)
    async def _too_deep(request: Request, exc: RecursionError) -> JSON:
        return _answer(request, 422, "the request body is nested too deeply", "InvalidRequest")

    @app.exception_handler(Exception)
    async def _internal(request: Request, exc: Exception) -> JSON:
        log.exception("internal error", exc_info=exc)
        return _answer(request, 500, "internal server error", "InternalError")


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
                  description="Recommendation and search inference (recseek, DJL Serving and KServe v2 "
                              "protocols), model management and feedback.")
    app.state.server = server
    _install_error_handlers(app)
    from .routes import text as text_routes  # items added by text, text-only users (models/content/text.py)

    for module in (routes.health, routes.inference, routes.management, routes.feedback, routes.oip, text_routes):
        app.include_router(module.router)
    app.openapi = partial(_openapi, app)  # type: ignore[method-assign]
    fast = partial(routes.inference.recommend_query, server) if config.fast_path else None
    app.add_middleware(Guard, max_body=config.max_body_bytes, max_header=config.max_header_bytes,
                       metrics=server.metrics, load=server.load, token=config.token, fast_recommend=fast)
    return app


def _openapi(app: FastAPI) -> dict:
    """FastAPI's document plus the schemas of bodies parsed by hand (``/predictions``, ``/invocations``)."""
    if app.openapi_schema is None:
        from fastapi.openapi.utils import get_openapi
        from pydantic import TypeAdapter

        doc = get_openapi(title=app.title, version=app.version, description=app.description, routes=app.routes)
        schemas = doc.setdefault("components", {}).setdefault("schemas", {})
        for model in routes.inference.PREDICTION_BODIES:
            defs = TypeAdapter(model).json_schema(ref_template="#/components/schemas/{model}")
            for name, sub in defs.pop("$defs", {}).items():
                schemas.setdefault(name, sub)
            schemas.setdefault(model.__name__, defs)
        app.openapi_schema = doc
    return app.openapi_schema


def _version() -> str:
    from .. import __version__

    return __version__
