"""Request and response bodies of the HTTP API (pydantic models, shown in the OpenAPI docs).

Ids are strings or integers, as in the data the model was trained on. A ``filter`` maps an
item field (from the model's ``item_data``, or a search index's metadata) to a value or a
list of accepted values.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field

Id = str | int
MAX_K = 1000
MAX_BATCH = 1000


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class RecommendRequest(_Strict):
    """Top-k items for several users in one request."""

    users: list[Id] = Field(min_length=1, max_length=MAX_BATCH)
    k: int = Field(10, ge=1, le=MAX_K)
    exclude_seen: bool = True
    exclude: list[Id] | None = Field(None, max_length=100_000, description="Item ids never to return.")
    filter: dict[str, Any] | None = Field(None, description="Item fields to match, e.g. {\"genre\": [\"Comedy\"]}.")


class ScoredItem(BaseModel):
    item: Id
    score: float


class Recommendation(BaseModel):
    user: Id
    items: list[ScoredItem]


class RecommendResponse(BaseModel):
    model: str
    version: str
    user: Id | None = None
    items: list[ScoredItem] | None = None
    results: list[Recommendation] | None = None


class SimilarResponse(BaseModel):
    model: str
    version: str
    item: Id
    items: list[ScoredItem]


class RatingPair(_Strict):
    user: Id
    item: Id


class PredictRatingRequest(_Strict):
    """Rating predictions: either ``user`` + ``items`` or a list of ``pairs``."""

    user: Id | None = None
    items: list[Id] | None = Field(None, max_length=100_000)
    pairs: list[RatingPair] | None = Field(None, max_length=100_000)


class Rating(BaseModel):
    user: Id
    item: Id
    rating: float


class PredictRatingResponse(BaseModel):
    model: str
    version: str
    predictions: list[Rating]


class SearchRequest(_Strict):
    query: str = Field(min_length=1, max_length=10_000)
    k: int = Field(10, ge=1, le=MAX_K)
    filter: dict[str, Any] | None = Field(None, description="Metadata conditions, e.g. {\"year\": {\"gte\": 1990}}.")
    hybrid: bool = Field(False, description="Fuse lexical and dense results (index built with a dense part).")
    user: Id | None = Field(None, description="Re-rank with this user's scores from the index's personalize model.")
    personalization: float = Field(0.5, ge=0.0, le=1.0, description="Weight of the user's model scores.")
    version: str | None = None


class Hit(BaseModel):
    id: str
    score: float


class SearchResponse(BaseModel):
    index: str
    version: str
    hits: list[Hit]


class FeedbackItem(_Strict):
    user: Id
    item: Id
    value: float = 1.0
    timestamp: float | None = Field(None, description="Unix seconds; the time of arrival when omitted.")


class FeedbackRequest(_Strict):
    """One event (``user``, ``item``, ...) or a list under ``events``."""

    user: Id | None = None
    item: Id | None = None
    value: float = 1.0
    timestamp: float | None = None
    events: list[FeedbackItem] | None = Field(None, max_length=10_000)


class FeedbackResponse(BaseModel):
    stored: int


class ErrorResponse(BaseModel):
    error: str
    status: int


class RegisterResponse(BaseModel):
    status: str
    name: str
    version: str
    default_version: str | None


class ServableVersion(BaseModel):
    model_config = ConfigDict(extra="allow")
    version: str
    default: bool
    status: str
    kind: str
    queue_depth: int
    workers: int
    batch_size: int
    max_batch_delay_ms: float


class DescribeResponse(BaseModel):
    name: str
    kind: str
    default_version: str | None
    versions: list[ServableVersion]
