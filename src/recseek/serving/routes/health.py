"""Health (DJL ``/ping``, OIP ``/v2/health/*``) and Prometheus metrics."""

from __future__ import annotations

from fastapi import APIRouter, Depends
from starlette.responses import Response

from ..http import JSON
from ..registry import Endpoint
from ..schemas import PingResponse
from ..state import Server, server_of

router = APIRouter(tags=["health"])


def _ready(server: Server) -> bool:
    return server.started and server.registry.is_ready()


@router.get("/ping", response_model=PingResponse, responses={503: {"model": PingResponse,
                                                                   "description": "Not ready"}})
async def ping(server: Server = Depends(server_of)) -> JSON:
    """DJL's health check: ``{"health": "healthy!"}`` and the status of every version."""
    ok = _ready(server)
    models = {f"{n}/{v}": ("READY" if isinstance(ep, Endpoint) else ep.status.upper())
              for n, v, ep, _ in server.registry.entries()}
    return JSON({"health": "healthy!" if ok else "unhealthy!", "models": models}, status_code=200 if ok else 503)


@router.get("/metrics", response_class=Response, responses={200: {"content": {"text/plain": {
    "schema": {"type": "string"}}}, "description": "Prometheus text exposition"}})
async def metrics(server: Server = Depends(server_of)) -> Response:
    """Prometheus metrics (text format 0.0.4)."""
    return Response(server.metrics.render(), media_type="text/plain; version=0.0.4; charset=utf-8")
