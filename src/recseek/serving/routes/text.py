"""Text routes: add items known only by their text to a served text model, and recommend
for a user described only by text.

- ``POST /models/{name}/items`` (management, token required): ``{"items": [{"id": ...,
  "text": ..., "title": ...}], "version": ...}``. The items are embedded and added to the
  served version (``TextToCF`` maps them to factors, ``ItemTextKNN`` and ``HybridText``
  rank them by text); they are recommended from the next request on. The change lives in
  the running server only: the model files are not rewritten.
- ``POST /recommend-text/{model}``: ``{"text": "light comedies from the nineties", "k": 10}``
  gives the top-``k`` items for a user described by that text alone.

The model is extended on a copy, which then replaces the served one, so requests being
answered meanwhile see either the old or the new catalogue.
"""

from __future__ import annotations

import threading
from typing import Any

import numpy as np
from fastapi import APIRouter, Depends
from pydantic import BaseModel, ConfigDict, Field

from ...errors import ParameterError, UnsupportedError
from ..http import JSON, responses
from ..schemas import MAX_K
from ..servables import ItemCategories, ModelServable
from ..state import Server, server_of
from .auth import require_token
from .inference import scored

#: Most items one request may add, and the longest text accepted (characters).
MAX_NEW_ITEMS = 1000
MAX_TEXT = 10_000

manage = APIRouter(tags=["management"], dependencies=[Depends(require_token)])
infer = APIRouter(tags=["inference"])
_ERR = responses(400, 401, 403, 404, 413, 422, 431)
_LOCK = threading.Lock()  # one catalogue change at a time


class NewItem(BaseModel):
    model_config = ConfigDict(extra="forbid")
    id: str | int = Field(description="Raw id of the new item (unknown to the model).")
    text: str = Field(min_length=1, max_length=MAX_TEXT, description="The item's text (title, description...).")
    title: str | None = Field(None, max_length=1000, description="Title shown in responses (default: none).")


class AddItemsRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    items: list[NewItem] = Field(min_length=1, max_length=MAX_NEW_ITEMS)
    version: str | None = Field(None, description="Model version (default: the default version).")


class AddItemsResponse(BaseModel):
    model: str
    version: str
    added: list[str | int]
    items: int = Field(description="Items the served version knows now.")


class TextRecommendRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    text: str = Field(min_length=1, max_length=MAX_TEXT, description="What the user wants, in words.")
    k: int = Field(10, ge=1, le=MAX_K)
    version: str | None = None


class ScoredItem(BaseModel):
    item: str | int
    score: float
    title: str | None = None


class TextRecommendResponse(BaseModel):
    model: str
    version: str
    text: str
    items: list[ScoredItem]


def _servable(server: Server, name: str, version: str | None) -> ModelServable:
    ep = server.registry.resolve(name, version, "model")
    s = ep.servable
    assert isinstance(s, ModelServable)
    return s


def _extend_categories(cats: ItemCategories | None, n_items: int, titles: list[str | None]) -> ItemCategories | None:
    if cats is None and not any(t is not None for t in titles):
        return None
    old_titles = cats.titles if cats is not None and cats.titles is not None else np.full(n_items - len(titles),
                                                                                           None, dtype=object)
    new_titles = np.concatenate([old_titles, np.asarray(titles, dtype=object)])
    columns = cats.columns if cats is not None else {}
    source = cats.source if cats is not None else "items added by text"
    return ItemCategories(columns, n_items, source, new_titles)


def _add(s: ModelServable, items: list[NewItem]) -> list[Any]:
    model = s.model
    if not callable(getattr(model, "add_items", None)):
        raise UnsupportedError(f"model {s.name} ({s.algorithm}) cannot add items by text; serve a TextToCF, "
                               "ItemTextKNN or HybridText model")
    ids = [it.id for it in items]
    if model.items_.ids.dtype.kind in "iu" and not all(isinstance(i, int) for i in ids):
        raise ParameterError(f"model {s.name} has integer item ids; give integer ids")
    with _LOCK:
        copy = type(model)(**model.get_params())
        copy.set_parameters(model.get_parameters(), history=model.has_history)
        copy.add_items(ids, [it.text for it in items])
        cats = _extend_categories(s.categories, int(copy.n_items_), [it.title for it in items])
        # the model first: its catalogue only grows, so an index read with either model is valid
        s.model = copy
        s._item_ids = np.asarray(copy.items_.ids)
        s.items = copy.items_
        s.categories = cats
        s.n_items = int(copy.n_items_)
    return ids


@manage.post("/models/{name}/items", response_model=AddItemsResponse, responses=_ERR)
async def add_items(name: str, body: AddItemsRequest, server: Server = Depends(server_of)) -> JSON:
    """Add items known only by their text to a served text model; they are recommended at once."""
    s = _servable(server, name, body.version)
    added = await server.blocking(_add, s, body.items)
    return JSON({"model": name, "version": s.version, "added": added, "items": s.n_items})


def _recommend_text(s: ModelServable, text: str, k: int) -> dict[str, Any]:
    model = s.model
    if not callable(getattr(model, "recommend_text", None)):
        raise UnsupportedError(f"model {s.name} ({s.algorithm}) cannot recommend from text; serve a TextToCF, "
                               "ItemTextKNN or HybridText model")
    ranking = model.recommend_text([text], k)
    return s._rows(ranking.ids, ranking.scores, [k])[0]


@infer.post("/recommend-text/{model}", response_model=TextRecommendResponse, responses=_ERR)
async def recommend_text(model: str, body: TextRecommendRequest, server: Server = Depends(server_of)) -> JSON:
    """Top-k items for a user described only by a text."""
    if not body.text.strip():
        raise ParameterError("text must not be blank")
    s = _servable(server, model, body.version)
    row = await server.blocking(_recommend_text, s, body.text, body.k)
    return JSON({"model": model, "version": s.version, "text": body.text, "items": scored(row)})


router = APIRouter()
router.include_router(manage)
router.include_router(infer)
