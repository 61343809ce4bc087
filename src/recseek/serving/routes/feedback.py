"""Feedback routes: store events (used by fold-in and retraining), list them and delete them."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Request

from ...errors import ParameterError
from ..http import JSON, Query, param, responses
from ..schemas import (
    FeedbackBatch,
    FeedbackDeleteResponse,
    FeedbackListResponse,
    FeedbackRequest,
    FeedbackResponse,
)
from ..servables import NotFound
from ..state import Server, server_of
from ..store import FeedbackEvent
from .auth import require_token

router = APIRouter(tags=["feedback"], dependencies=[Depends(require_token)])

_ERR = responses(400, 401, 403, 404, 413, 422, 431)
_MAX_ID = 2**62


@router.post("/feedback", response_model=FeedbackResponse, responses=_ERR)
async def feedback_post(body: FeedbackRequest, server: Server = Depends(server_of)) -> JSON:
    """Store one event (``user``, ``item``, ``value``, ``timestamp``) or a list under ``events``."""
    items = body.events if isinstance(body, FeedbackBatch) else [body]
    events = [FeedbackEvent(str(e.user), str(e.item), float(e.value),
                            None if e.timestamp is None else float(e.timestamp)) for e in items]
    return JSON({"stored": await server.add_feedback(events)})


@router.get("/feedback", response_model=FeedbackListResponse, responses=_ERR, openapi_extra={"parameters": [
    param("user", "query", "string", "Only this user's events.", minLength=1),
    param("limit", "query", "integer", "Most events to return (1..1000).", default=100, minimum=1, maximum=1000),
    param("next_page_token", "query", "string", "Token of the next page from a previous answer.",
          pattern="^[0-9]{1,18}$"),
]})
async def feedback_list(request: Request, server: Server = Depends(server_of)) -> JSON:
    """Stored events, oldest first, ``limit`` at a time."""
    q = Query(request.query_params, ("user", "limit", "next_page_token"))
    limit = q.integer("limit", 100, 1, 1000)
    after = _token(q.get("next_page_token"))
    user = q.get("user")
    if user is not None and not user:
        raise ParameterError("query parameter 'user' must not be empty")
    assert server.feedback is not None
    events = await server.blocking(server.feedback.list_events, user, after, limit)
    out: dict[str, Any] = {"events": events}
    if len(events) == limit:
        out["nextPageToken"] = str(events[-1]["id"])
    return JSON(out)


@router.delete("/feedback/{event_id}", response_model=FeedbackDeleteResponse, responses=_ERR)
async def feedback_delete_one(event_id: int, server: Server = Depends(server_of)) -> JSON:
    """Delete one stored event by its id (as listed by GET /feedback)."""
    if not 1 <= event_id <= _MAX_ID:
        raise NotFound(f"no feedback event {event_id}")
    assert server.feedback is not None
    n = await server.blocking(lambda: server.feedback.delete(ids=[event_id]))
    if n == 0:
        raise NotFound(f"no feedback event {event_id}")
    server.forget_fold_in()
    return JSON({"deleted": n})


@router.delete("/feedback", response_model=FeedbackDeleteResponse, responses=_ERR,
               openapi_extra={"parameters": [param("user", "query", "string", "Delete every event of this user.",
                                                   True, minLength=1)]})
async def feedback_delete_user(request: Request, server: Server = Depends(server_of)) -> JSON:
    """Delete every stored event of one user."""
    q = Query(request.query_params, ("user",))
    user = q.required("user")
    assert server.feedback is not None
    n = await server.blocking(lambda: server.feedback.delete(user=user))
    server.forget_fold_in()
    return JSON({"deleted": n})


def _token(v: str | None) -> int:
    if v is None:
        return 0
    if not v.isascii() or not v.isdigit() or len(v) > 18:
        raise ParameterError(f"next_page_token {v!r} is not a token this server gave")
    return int(v)
