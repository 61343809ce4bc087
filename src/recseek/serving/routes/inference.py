"""Inference routes: recommend, similar items, rating prediction, search and DJL's
``/predictions`` and ``/invocations``.

Every route resolves the model version on the event loop, turns raw ids into indices
and queues one request (of one job per user) on the version's batcher.
"""

from __future__ import annotations

import asyncio
from typing import Any

import numpy as np
from fastapi import APIRouter, Depends, Request
from fastapi import Query as Query_
from fastapi.exceptions import RequestValidationError
from pydantic import TypeAdapter, ValidationError

from ...errors import ParameterError, UnsupportedError
from ..http import JSON, Query, param, parse_json, responses
from ..registry import Endpoint
from ..schemas import (
    MAX_K,
    PairRatingsRequest,
    PredictRatingRequest,
    PredictRatingResponse,
    RecommendOne,
    RecommendRequest,
    RecommendResponse,
    SearchRequest,
    SearchResponse,
    SimilarRequest,
    SimilarResponse,
    UserRatingsRequest,
)
from ..servables import ModelServable, NotFound
from ..state import Server, server_of

router = APIRouter(tags=["inference"])

_ERR = responses(400, 403, 404, 413, 422, 431, 503, 504)
_PATH_MODEL = param("model", "path", "string", "Model name.", True)
_VERSION = param("version", "query", "string", "Model version (default: the default version).")
_K = param("k", "query", "integer", f"Number of items (1..{MAX_K}).", default=10, minimum=1, maximum=MAX_K)
RECOMMEND_NAMES = ("user", "k", "exclude_seen", "exclude", "filter", "version")
_RECOMMEND_QUERY = [
    _PATH_MODEL,
    param("user", "query", "string", "User id.", True, minLength=1),
    _K,
    param("exclude_seen", "query", "boolean", "Never return items the user interacted with.", default=True),
    {**param("exclude", "query", "array", "Item ids to exclude (repeat or comma-separate)."),
     "schema": {"type": "array", "items": {"type": "string"}}},
    {**param("filter", "query", "array", "Item filter field:value (repeatable; same field = any of)."),
     "schema": {"type": "array", "items": {"type": "string", "pattern": "^[^:]+:.+$"}}},
    _VERSION,
]
_SIMILAR_QUERY = [_PATH_MODEL, param("item", "query", "string", "Item id.", True, minLength=1), _K, _VERSION]


# ---------------------------------------------------------------- helpers
def parse_filter(items: list[str] | None) -> dict[str, list[str]] | None:
    """``["genre:Comedy", ...]`` as ``{"genre": ["Comedy", ...]}``."""
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


def scored(res: dict[str, list]) -> list[dict[str, Any]]:
    """``[{"item", "score"[, "title"]}]`` of one result row."""
    titles = res.get("titles")
    if titles is None:
        return [{"item": i, "score": s} for i, s in zip(res["items"], res["scores"], strict=True)]
    return [{"item": i, "score": s, "title": t} for i, s, t in zip(res["items"], res["scores"], titles, strict=True)]


def _model(server: Server, name: str, version: str | None) -> tuple[Endpoint, ModelServable]:
    ep = server.registry.resolve(name, version, "model")
    return ep, ep.servable  # type: ignore[return-value]


async def _user_job(server: Server, s: ModelServable, user: Any, k: int, exclude_seen: bool,
                    exclude_idx: np.ndarray | None) -> tuple[str, dict[str, Any]]:
    """The batch job recommending to one user: a known user, or one folded in from stored feedback."""
    u = s.user_index(user)
    if u >= 0:
        return "recommend", {"user": u, "k": k, "exclude_seen": exclude_seen, "exclude": exclude_idx}
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
    return "recommend_new", {"items": items[keep], "values": values[keep], "k": k, "exclude": exclude_idx}


async def recommend_users(server: Server, model: str, version: str | None, users: list[Any], k: int,
                          exclude_seen: bool, exclude: list[Any] | None,
                          flt: dict[str, Any] | None) -> tuple[Endpoint, list[dict[str, Any]]]:
    """Top-``k`` rows for ``users`` as one queued request."""
    limit = server.config.max_results
    if len(users) * k > limit:
        raise ParameterError(f"{len(users)} users x k={k} asks for {len(users) * k} results; "
                             f"one request may ask for at most {limit}")
    ep, s = _model(server, model, version)
    ex = s.exclusion(exclude, flt) if (exclude or flt) else None
    jobs = [await _user_job(server, s, u, k, exclude_seen, ex) for u in users]
    return ep, list(await asyncio.gather(*ep.batcher.submit_many(jobs)))


async def recommend_query(server: Server, model: str, params: Any) -> dict[str, Any]:
    """GET /recommend/{model} from its query string (also the server's fast path)."""
    q = Query(params, RECOMMEND_NAMES)
    user = q.required("user")
    k = q.integer("k", 10, 1, MAX_K)
    ep, rows = await recommend_users(server, model, q.get("version"), [user], k, q.boolean("exclude_seen", True),
                                     _split_ids(q.many("exclude")), parse_filter(q.many("filter")))
    return {"model": model, "version": ep.version, "user": user, "items": scored(rows[0])}


async def _recommend_body(server: Server, model: str, version: str | None, body: RecommendRequest) -> dict:
    _check_filter(body.filter)
    ep, rows = await recommend_users(server, model, version, list(body.users), body.k, body.exclude_seen,
                                     body.exclude, body.filter)
    return {"model": model, "version": ep.version,
            "results": [{"user": u, "items": scored(r)} for u, r in zip(body.users, rows, strict=True)]}


async def _similar(server: Server, model: str, item: Any, k: int, version: str | None) -> dict[str, Any]:
    ep, s = _model(server, model, version)
    i = s.require_item(item)
    res = await ep.batcher.submit("similar", {"item": i, "k": k})
    return {"model": model, "version": ep.version, "item": item, "items": scored(res)}


async def _predict(server: Server, model: str, version: str | None, body: PredictRatingRequest) -> dict[str, Any]:
    ep, s = _model(server, model, version)
    if isinstance(body, PairRatingsRequest):
        raw_users = [p.user for p in body.pairs]
        raw_items = [p.item for p in body.pairs]
    else:
        raw_users = [body.user] * len(body.items)
        raw_items = list(body.items)
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
    return {"model": model, "version": ep.version,
            "predictions": [{"user": u, "item": i, "rating": r}
                            for u, i, r in zip(raw_users, raw_items, ratings, strict=True)]}


async def search_index(server: Server, index: str, version: str | None, body: SearchRequest) -> dict[str, Any]:
    """Hits of one query (personalised with the index's model when ``user`` is given)."""
    reg = server.registry
    ep = reg.resolve(index, version or body.version, "index")
    s = ep.servable
    if body.filter is not None and not isinstance(body.filter, dict):
        raise ParameterError("filter must be an object")
    personal = None
    if body.user is not None:
        if not getattr(s, "personalize", None):
            raise ParameterError(f"user: index {index} has no personalize model configured")
        _, ms = _model(server, s.personalize, None)
        if ms.user_index(body.user) < 0:
            raise NotFound(f"unknown user {body.user!r} for model {ms.name} version {ms.version}")
        personal = (ms, body.user, body.personalization)  # re-ranked by ItemSearch in the batch
    s.pick(body.hybrid)
    res = await ep.batcher.submit("search", {"query": body.query, "k": body.k, "filter": body.filter,
                                             "hybrid": body.hybrid, "personal": personal})
    hits = [{"id": i, "score": sc} for i, sc in zip(res["items"], res["scores"], strict=True)]
    return {"index": index, "version": ep.version, "hits": hits}


def _validated(cls: Any, raw: dict[str, Any]) -> Any:
    try:
        return TypeAdapter(cls).validate_python(raw)
    except ValidationError as e:
        raise RequestValidationError(e.errors()) from None


async def request_json(request: Request) -> Any:
    """The JSON body of a request: raw, or the ``data`` part of a multipart form (``curl -F data=@file``)."""
    body = await request.body()
    ctype = request.headers.get("content-type", "")
    if ctype.lower().startswith("multipart/form-data"):
        body = _multipart_data(body, ctype)
    return parse_json(body)


def _multipart_data(body: bytes, ctype: str) -> bytes:
    from email.parser import BytesParser
    from email.policy import HTTP

    msg = BytesParser(policy=HTTP).parsebytes(b"Content-Type: " + ctype.encode("latin-1") + b"\r\n\r\n" + body)
    if not msg.is_multipart():
        raise ParameterError("the multipart body cannot be read (check its boundary)")
    parts = list(msg.iter_parts())
    for part in parts:
        if part.get_param("name", header="content-disposition") == "data":
            return part.get_payload(decode=True) or b""
    raise ParameterError(f"the multipart body has no part named 'data' (parts: {len(parts)})")


async def predictions_of(server: Server, name: str, version: str | None, request: Request) -> dict[str, Any]:
    """DJL-style inference: the body decides the operation (see docs/serving.md)."""
    ep = server.registry.resolve(name, version)
    raw = await request_json(request)
    if not isinstance(raw, dict):
        raise ParameterError("the request body must be a JSON object")
    if ep.servable.kind == "index":
        return await search_index(server, name, ep.version, _validated(SearchRequest, {**raw, "version": None}))
    if "pairs" in raw or ("user" in raw and "items" in raw):
        return await _predict(server, name, ep.version, _validated(PredictRatingRequest, raw))
    if "item" in raw:
        body = _validated(SimilarRequest, raw)
        return await _similar(server, name, body.item, body.k, ep.version)
    if "user" in raw:
        one = _validated(RecommendOne, raw)
        body = RecommendRequest(users=[one.user], k=one.k, exclude_seen=one.exclude_seen, exclude=one.exclude,
                                filter=one.filter)
        out = await _recommend_body(server, name, ep.version, body)
        first = out["results"][0]
        return {"model": name, "version": ep.version, "user": first["user"], "items": first["items"]}
    if "users" in raw:
        return await _recommend_body(server, name, ep.version, _validated(RecommendRequest, raw))
    raise ParameterError("the body must hold user, users, item, pairs or user and items (or query for an index)")


#: Bodies of /predictions and /invocations (documented; the body decides the operation).
PREDICTION_BODIES = (RecommendOne, RecommendRequest, SimilarRequest, UserRatingsRequest, PairRatingsRequest,
                     SearchRequest)


# ---------------------------------------------------------------- routes
# The GET routes parse their query strings by hand: FastAPI's per-parameter validation
# costs more than the rest of the request; the OpenAPI description is given explicitly.
@router.get("/recommend/{model}", response_model=RecommendResponse, responses=_ERR,
            openapi_extra={"parameters": _RECOMMEND_QUERY})
async def recommend_get(request: Request, server: Server = Depends(server_of)) -> JSON:
    """Top-k items for one user: ?user=&k=&exclude_seen=&exclude=&filter=field:value&version=."""
    return JSON(await recommend_query(server, request.path_params["model"], request.query_params))


@router.post("/recommend/{model}", response_model=RecommendResponse, responses=_ERR)
async def recommend_post(model: str, body: RecommendRequest, version: str | None = None,
                         server: Server = Depends(server_of)) -> JSON:
    """Top-k items for several users (one request; users x k is bounded by ``max_results``)."""
    return JSON(await _recommend_body(server, model, version, body))


@router.get("/similar-items/{model}", response_model=SimilarResponse, responses=_ERR,
            openapi_extra={"parameters": _SIMILAR_QUERY})
async def similar_items_get(request: Request, server: Server = Depends(server_of)) -> JSON:
    """The k items most similar to one item: ?item=&k=&version=."""
    q = Query(request.query_params, ("item", "k", "version"))
    return JSON(await _similar(server, request.path_params["model"], q.required("item"),
                               q.integer("k", 10, 1, MAX_K), q.get("version")))


@router.post("/predict-rating/{model}", response_model=PredictRatingResponse, responses=_ERR)
async def predict_rating(model: str, body: PredictRatingRequest, version: str | None = None,
                         server: Server = Depends(server_of)) -> JSON:
    """Predicted ratings for ``user`` + ``items`` or for ``pairs``."""
    return JSON(await _predict(server, model, version, body))


@router.post("/search/{index}", response_model=SearchResponse, responses=_ERR)
async def search(index: str, body: SearchRequest, server: Server = Depends(server_of)) -> JSON:
    """The k best documents of a search index for one query."""
    return JSON(await search_index(server, index, None, body))


_BODY_SCHEMA = {"anyOf": [{"$ref": f"#/components/schemas/{m.__name__}"} for m in PREDICTION_BODIES]}
_ANY_BODY = {"requestBody": {"required": True, "content": {"application/json": {"schema": _BODY_SCHEMA}}},
             "description": "The body decides the operation. It may also come as the `data` part of a "
                            "multipart form (`curl -F data=@request.json`)."}


@router.post("/predictions/{model}", responses=_ERR, response_model=RecommendResponse | SimilarResponse |
             PredictRatingResponse | SearchResponse, openapi_extra=_ANY_BODY)
async def predictions(model: str, request: Request, server: Server = Depends(server_of)) -> JSON:
    """DJL-compatible inference: the body decides the operation (see docs/serving.md)."""
    return JSON(await predictions_of(server, model, None, request))


@router.post("/predictions/{model}/{version}", responses=_ERR, response_model=RecommendResponse |
             SimilarResponse | PredictRatingResponse | SearchResponse, openapi_extra=_ANY_BODY)
async def predictions_version(model: str, version: str, request: Request,
                              server: Server = Depends(server_of)) -> JSON:
    """DJL-compatible inference on one version."""
    return JSON(await predictions_of(server, model, version, request))


@router.post("/invocations", responses=_ERR, response_model=RecommendResponse | SimilarResponse |
             PredictRatingResponse | SearchResponse, openapi_extra=_ANY_BODY)
async def invocations(request: Request, model_name: str | None = Query_(None, min_length=1),
                      server: Server = Depends(server_of)) -> JSON:
    """DJL's ``/invocations``: like ``/predictions/{model_name}``; the only served name when omitted."""
    Query(request.query_params, ("model_name",))
    if model_name is None:
        names = server.registry.names()
        if len(names) != 1:
            raise NotFound(f"no model_name given and {len(names)} models are served: name one with ?model_name=")
        model_name = names[0]
    return JSON(await predictions_of(server, model_name, None, request))
