"""Request and response bodies of the HTTP API (pydantic models, shown in the OpenAPI docs).

Ids are strings or integers, as in the data the model was trained on. A ``filter`` maps an
item field (from the model's ``item_data``, or a search index's metadata) to a value or a
list of accepted values.
"""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StrictBool,
    StrictFloat,
    StrictStr,
    StringConstraints,
)


def _integral(v: Any) -> Any:
    """JSON integers, including integral numbers such as ``5.0``; never booleans or strings."""
    if isinstance(v, bool) or not isinstance(v, int | float):
        raise ValueError("must be an integer")
    if isinstance(v, float):
        if not v.is_integer():
            raise ValueError("must be an integer")
        return int(v)
    return v


def _number(v: Any) -> Any:
    """JSON numbers only (no booleans, no numeric strings)."""
    if isinstance(v, bool) or not isinstance(v, int | float):
        raise ValueError("must be a number")
    return float(v)


#: A number, without coercion from text or booleans.
Number = Annotated[float, BeforeValidator(_number)]
#: An integer as JSON Schema defines it (``5`` or ``5.0``), without coercion from text or booleans.
Int = Annotated[int, BeforeValidator(_integral)]
#: A raw user or item id: a non-empty string of at most 256 characters, or an integer.
Id = Annotated[StrictStr, StringConstraints(min_length=1, max_length=256)] | Int
#: Values of a recommendation filter: one value or a list of accepted ones.
_FilterValue = StrictStr | Int | StrictFloat
RecommendFilter = dict[str, _FilterValue | list[_FilterValue]]
MAX_K = 1000
MAX_BATCH = 1000
#: Largest |value| of a feedback event and the latest accepted timestamp (year 2500, Unix seconds).
MAX_FEEDBACK_VALUE = 1e6
MAX_TIMESTAMP = 16_725_225_600.0


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class RecommendRequest(_Strict):
    """Top-k items for several users in one request."""

    users: list[Id] = Field(min_length=1, max_length=MAX_BATCH)
    k: Int = Field(10, ge=1, le=MAX_K)
    exclude_seen: StrictBool = True
    exclude: list[Id] | None = Field(None, max_length=100_000, description="Item ids never to return.")
    filter: RecommendFilter | None = Field(None, description="Item fields to match, e.g. {\"genre\": [\"Comedy\"]}.")


class ScoredItem(BaseModel):
    item: Id
    score: float
    title: str | None = Field(None, description="The item's title, when the model carries item data.")


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


class RecommendOne(_Strict):
    """DJL ``/predictions`` body recommending to one user."""

    user: Id
    k: Int = Field(10, ge=1, le=MAX_K)
    exclude_seen: StrictBool = True
    exclude: list[Id] | None = Field(None, max_length=100_000)
    filter: RecommendFilter | None = None


class SimilarRequest(_Strict):
    """DJL ``/predictions`` body asking for the items most similar to one item."""

    item: Id
    k: Int = Field(10, ge=1, le=MAX_K)


class RatingPair(_Strict):
    user: Id
    item: Id


class UserRatingsRequest(_Strict):
    """Rating predictions of one user for several items."""

    user: Id
    items: list[Id] = Field(min_length=1, max_length=10_000)


class PairRatingsRequest(_Strict):
    """Rating predictions of (user, item) pairs."""

    pairs: list[RatingPair] = Field(min_length=1, max_length=10_000)


#: The body of POST /predict-rating: ``user`` + ``items``, or ``pairs``.
PredictRatingRequest = UserRatingsRequest | PairRatingsRequest


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
    k: Int = Field(10, ge=1, le=MAX_K)
    filter: dict[str, Any] | None = Field(None, description="Metadata conditions, e.g. {\"year\": {\"gte\": 1990}}.")
    hybrid: StrictBool = Field(False, description="Fuse lexical and dense results (index built with a dense part).")
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




# the bounds come before the validator so that they are checked on the number and documented
# in the OpenAPI document as minimum / maximum
FeedbackValue = Annotated[float, Field(ge=-MAX_FEEDBACK_VALUE, le=MAX_FEEDBACK_VALUE), BeforeValidator(_number)]
Timestamp = Annotated[float, Field(ge=0, le=MAX_TIMESTAMP), BeforeValidator(_number)]


class FeedbackItem(_Strict):
    """One feedback event."""

    user: Id
    item: Id
    value: FeedbackValue = 1.0
    timestamp: Timestamp | None = Field(None, description="Unix seconds; the time of arrival when omitted.")


class FeedbackBatch(_Strict):
    """Several feedback events."""

    events: list[FeedbackItem] = Field(min_length=1, max_length=1000)


#: The body of POST /feedback: one event, or a list under ``events``.
FeedbackRequest = FeedbackItem | FeedbackBatch


class FeedbackResponse(BaseModel):
    stored: int


class StoredEvent(BaseModel):
    id: int
    user: str
    item: str
    value: float
    timestamp: float


class FeedbackListResponse(BaseModel):
    events: list[StoredEvent]
    nextPageToken: str | None = None


class FeedbackDeleteResponse(BaseModel):
    deleted: int


class ErrorResponse(BaseModel):
    """DJL Serving's error body."""

    code: int
    type: str
    message: str


class OipError(BaseModel):
    """The Open Inference Protocol's error body."""

    error: str


class StatusResponse(BaseModel):
    status: str


class RegisterStatus(BaseModel):
    status: str
    modelName: str
    version: str | None = None


class ListedModel(BaseModel):
    modelName: str
    version: str
    modelUrl: str
    status: str
    kind: str | None = None
    default: bool = False
    message: str | None = None


class ListModelsResponse(BaseModel):
    models: list[ListedModel]
    nextPageToken: str | None = None


class Device(BaseModel):
    deviceType: str
    deviceId: int


class Worker(BaseModel):
    id: int
    startTime: str
    status: str


class WorkerGroup(BaseModel):
    device: Device
    minWorkers: int
    maxWorkers: int
    workers: list[Worker]


class DescribedModel(BaseModel):
    model_config = ConfigDict(extra="allow")
    modelName: str
    version: str
    modelUrl: str
    batchSize: int | None = None
    maxBatchDelayMillis: float | None = None
    maxIdleSeconds: float | None = None
    queueSize: int | None = None
    requestInQueue: int | None = None
    status: str
    loadedAtStartup: bool
    workerGroups: list[WorkerGroup]


class DescribedWorkflow(BaseModel):
    workflowName: str
    models: list[DescribedModel]


class UnregisterResponse(BaseModel):
    status: str
    versions: list[str]


class PingResponse(BaseModel):
    health: str
    models: dict[str, str] = Field(default_factory=dict)


# ---------------------------------------------------------------- Open Inference Protocol v2
class OipTensor(_Strict):
    name: str = Field(min_length=1, max_length=64)
    shape: list[Int] = Field(max_length=4)
    datatype: str
    parameters: dict[str, Any] | None = None
    data: list[Any] = Field(max_length=100_000)


class OipRequestedOutput(_Strict):
    name: str
    parameters: dict[str, Any] | None = None


class OipInferRequest(_Strict):
    id: str | None = Field(None, max_length=256)
    parameters: dict[str, Any] | None = None
    inputs: list[OipTensor] = Field(min_length=1, max_length=8)
    outputs: list[OipRequestedOutput] | None = Field(None, max_length=8)


class OipInferResponse(BaseModel):
    model_name: str
    model_version: str
    id: str | None = None
    parameters: dict[str, Any] | None = None
    outputs: list[dict[str, Any]]


class OipTensorMeta(BaseModel):
    name: str
    datatype: str
    shape: list[int]


class OipModelMetadata(BaseModel):
    name: str
    versions: list[str]
    platform: str
    inputs: list[OipTensorMeta]
    outputs: list[OipTensorMeta]


class OipServerMetadata(BaseModel):
    name: str
    version: str
    extensions: list[str]


class OipReady(BaseModel):
    name: str
    ready: bool



