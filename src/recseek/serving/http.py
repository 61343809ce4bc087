"""HTTP plumbing shared by the routers: the JSON response, error bodies, query strings
and the ASGI guard in front of the application.

Errors are DJL Serving's body ``{"code": <status>, "type": "<error class>", "message":
"<one sentence>"}``; routes of the Open Inference Protocol (``/v2/...``) answer OIP's
``{"error": "<one sentence>"}`` instead.

The guard runs before routing, as plain ASGI: it refuses request headers over
``max_header_bytes`` (431) and bodies over ``max_body_bytes`` (413); without a token it
answers only requests whose ``Host`` is a loopback name (403; this defeats DNS
rebinding) and refuses state-changing requests (management, feedback) sent by a browser
from another origin or without a JSON body or an ``X-Recseek-Client`` header (403),
which a web page cannot send without the server's consent. It also counts the HTTP
requests in progress for adaptive batching and records request metrics.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any
from urllib.parse import urlsplit

from fastapi.responses import JSONResponse

from ..errors import DataError, ModelFileError, ParameterError, RecseekError, UnsupportedError
from .batching import Load, Overloaded, RequestTimeout
from .config import is_loopback
from .metrics import Metrics
from .servables import Conflict, NotFound

log = logging.getLogger("recseek.serving")

try:  # orjson is part of the serve extra; the standard library is the fallback
    import orjson

    def dumps(obj: Any) -> bytes:
        """``obj`` as compact JSON bytes (numpy scalars and arrays included)."""
        return orjson.dumps(obj, option=orjson.OPT_SERIALIZE_NUMPY)
except ImportError:  # pragma: no cover - depends on the environment
    def dumps(obj: Any) -> bytes:
        """``obj`` as compact JSON bytes."""
        return json.dumps(obj, separators=(",", ":")).encode()


class JSON(JSONResponse):
    """A JSON response rendered with orjson (a FastAPI JSON response, so OpenAPI shows its model)."""

    def render(self, content: Any) -> bytes:
        return dumps(content)


class Unauthorized(RecseekError):
    """Missing or wrong bearer token (HTTP 401)."""


class Forbidden(RecseekError):
    """A request the server refuses to answer for its origin (HTTP 403)."""


class BodyTooLarge(RecseekError):
    """Request body over ``max_body_bytes`` (HTTP 413)."""


_STATUS: list[tuple[type[BaseException], int]] = [
    (NotFound, 404), (Unauthorized, 401), (Forbidden, 403), (Conflict, 409), (Overloaded, 503),
    (RequestTimeout, 504), (BodyTooLarge, 413), (UnsupportedError, 400), (ModelFileError, 422),
    (ParameterError, 422), (DataError, 422), (RecseekError, 422),
]


def status_of(exc: BaseException) -> int:
    """The HTTP status of an exception (500 for anything that is not a user mistake)."""
    for cls, code in _STATUS:
        if isinstance(exc, cls):
            return code
    return 500


def error_headers(exc: BaseException) -> dict[str, str] | None:
    if isinstance(exc, Overloaded):
        return {"Retry-After": str(exc.retry_after)}
    if isinstance(exc, Unauthorized):
        return {"WWW-Authenticate": "Bearer"}
    return None


def error_body(status: int, message: str, kind: str, oip: bool = False) -> dict[str, Any]:
    """DJL's error body, or OIP's for ``/v2`` routes."""
    message = " ".join(message.split())
    return {"error": message} if oip else {"code": status, "type": kind, "message": message}


def error_response(status: int, message: str, kind: str, *, oip: bool = False,
                   headers: dict[str, str] | None = None) -> JSON:
    return JSON(error_body(status, message, kind, oip), status_code=status, headers=headers)


def is_oip(path: str) -> bool:
    return path == "/v2" or path.startswith("/v2/")


def _kind_of(status: int) -> str:
    return {400: "BadRequest", 401: "Unauthorized", 403: "Forbidden", 404: "NotFound", 405: "MethodNotAllowed",
            409: "Conflict", 413: "BodyTooLarge", 422: "InvalidRequest", 431: "HeadersTooLarge",
            503: "Overloaded", 504: "RequestTimeout"}.get(status, "Error")


def http_kind(status: int) -> str:
    """The error ``type`` of a status without a recseek exception behind it."""
    return _kind_of(status)


# ---------------------------------------------------------------- query strings
class Query:
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

    def integer(self, name: str, default: int | None, lo: int, hi: int) -> int | None:
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

    def number(self, name: str, lo: float, hi: float) -> float | None:
        v = self.qp.get(name)
        if v is None:
            return None
        try:
            x = float(v)
        except ValueError:
            raise ParameterError(f"query parameter {name!r} must be a number, got {v!r}") from None
        if not lo <= x <= hi:
            raise ParameterError(f"query parameter {name!r} must be in [{lo:g}, {hi:g}], got {v}")
        return x

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


def param(name: str, where: str, typ: str, description: str, required: bool = False, **schema: Any) -> dict:
    """One OpenAPI parameter object (for routes that parse their query string by hand)."""
    return {"name": name, "in": where, "required": required, "description": description,
            "schema": {"type": typ, **schema}}


def responses(*codes: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI ``responses`` entries for the given error statuses."""
    from .schemas import ErrorResponse

    return {c: {"model": ErrorResponse, "description": _kind_of(c)} for c in codes}


def parse_json(body: bytes) -> Any:
    """A request body as JSON; one :class:`ParameterError` for invalid or too deeply nested input."""
    try:
        return json.loads(body)
    except RecursionError:
        raise ParameterError("the request body is nested too deeply") from None
    except (json.JSONDecodeError, UnicodeDecodeError):
        raise ParameterError("the request body must be valid JSON") from None


# ---------------------------------------------------------------- the guard
#: Paths that change the server's state (management, feedback).
_STATEFUL_PREFIXES = ("/models", "/workflows", "/feedback")
_UNCOUNTED = ("/ping", "/metrics", "/v2/health/live", "/v2/health/ready")


def _host_name(host: str) -> str:
    if host.startswith("["):
        return host[1:].split("]", 1)[0]
    return host.rsplit(":", 1)[0] if host.count(":") == 1 else host


class Guard:
    """Limits, origin checks, in-flight counting and metrics in front of the application."""

    def __init__(self, app: Any, *, max_body: int, max_header: int, metrics: Metrics, load: Load,
                 token: str | None, fast_recommend: Callable[[str, Any], Awaitable[dict]] | None = None) -> None:
        self.app = app
        self.max_body = max_body
        self.max_header = max_header
        self.metrics = metrics
        self.load = load
        self.token = token
        self.fast_recommend = fast_recommend

    async def __call__(self, scope: dict, receive: Callable, send: Callable) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        t0 = time.perf_counter()
        path = scope["path"]
        refusal = self._refusal(scope)
        if refusal is not None:
            status, message = refusal
            await send_error(send, status, message, is_oip(path))
            self._observe(scope, status, t0)
            return
        counted = path not in _UNCOUNTED
        if counted:
            self.load.http += 1
        try:
            if self.fast_recommend is not None and scope["method"] == "GET" and path.startswith("/recommend/"):
                model = path[11:]
                if model and "/" not in model:
                    await self._fast(self.fast_recommend, model, scope, send, t0)
                    return
            await self._limited(scope, receive, send, t0)
        finally:
            if counted:
                self.load.http -= 1

    def _refusal(self, scope: dict) -> tuple[int, str] | None:
        """``(status, message)`` when the request must not reach the application."""
        headers = scope.get("headers", ())
        size = 0
        found: dict[bytes, bytes] = {}
        for k, v in headers:
            size += len(k) + len(v)
            if k in (b"host", b"origin", b"content-length", b"content-type", b"x-recseek-client",
                     b"sec-fetch-site"):
                found[k] = v
        if size > self.max_header:
            return 431, f"request headers over the limit of {self.max_header} bytes"
        length = found.get(b"content-length")
        if length is not None:
            try:
                if int(length) > self.max_body:
                    return 413, f"request body over the limit of {self.max_body} bytes"
            except ValueError:
                return 400, "the Content-Length header is not a number"
        if self.token:
            return None
        host = found.get(b"host", b"").decode("latin-1")
        if not is_loopback(_host_name(host)):
            return 403, (f"Host {host!r} is not a loopback name; a server without a token answers "
                         "localhost, 127.0.0.1 and [::1] only")
        if scope["method"] in ("POST", "PUT", "DELETE", "PATCH") and scope["path"].startswith(_STATEFUL_PREFIXES):
            return self._cross_site(found, host)
        return None

    @staticmethod
    def _cross_site(found: dict[bytes, bytes], host: str) -> tuple[int, str] | None:
        origin = found.get(b"origin")
        site = found.get(b"sec-fetch-site", b"").lower()
        if origin is None and site in (b"", b"none"):
            return None  # not sent by a web page (curl, httpx, the CLI)
        if origin is not None and urlsplit(origin.decode("latin-1")).netloc != host:
            return 403, "state-changing requests from another origin are refused (set a token to allow them)"
        if site == b"cross-site" or site == b"same-site":
            return 403, "state-changing requests from another site are refused (set a token to allow them)"
        ctype = found.get(b"content-type", b"").split(b";", 1)[0].strip().lower()
        if ctype != b"application/json" and b"x-recseek-client" not in found:
            return 403, "state-changing requests from a browser need a JSON body or an X-Recseek-Client header"
        return None

    async def _limited(self, scope: dict, receive: Callable, send: Callable, t0: float) -> None:
        status = [500]
        seen = [0]
        over = [False]
        max_body = self.max_body
        oip = is_oip(scope["path"])

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
                    await send_error(send, 413, f"request body over the limit of {max_body} bytes", oip)
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
            body = dumps(await handler(model, QueryParams(scope["query_string"])))
            status = 200
        except RecseekError as exc:
            status = status_of(exc)
            headers = error_headers(exc)
            body = dumps(error_body(status, str(exc), type(exc).__name__))
        except Exception as exc:  # same as the application's handler of unexpected errors
            log.exception("internal error", exc_info=exc)
            status = 500
            body = dumps(error_body(500, "internal server error", "InternalError"))
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


async def send_error(send: Callable, status: int, message: str, oip: bool = False) -> None:
    """Answer an error straight from ASGI."""
    body = dumps(error_body(status, message, _kind_of(status), oip))
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]})
    await send({"type": "http.response.body", "body": body})
