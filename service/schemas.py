"""Pydantic request and response types: the edge of the service, and its OpenAPI page."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, WithJsonSchema, model_validator

from model.config import MAX_BATCH_SIZE
from model.data import MAX_CLASSES

IRIS_FEATURES = ("sepal_length", "sepal_width", "petal_length", "petal_width")
MAX_TABLE_ROWS = 100_000
MAX_TABLE_FEATURES = 64


def _not_blank(name: str) -> str:
    if not name.strip():
        raise ValueError(f"a feature name must hold a character other than spaces, got {name!r}")
    return name


# A column's name: what the trainer takes (checked here, so a job is never queued to fail).
FeatureName = Annotated[
    str, AfterValidator(_not_blank), WithJsonSchema({"type": "string", "pattern": r"\S"})
]


class ErrorResponse(BaseModel):
    """Every error of the native API: ``{"detail": ...}`` (a 422 keeps FastAPI's list form)."""

    detail: Any


def error_responses(*codes: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI entries for the error statuses a route can answer."""
    reasons = {
        401: "No bearer token",
        403: "Wrong bearer token",
        404: "Unknown version or job",
        409: "Conflict with the resource's state",
        413: "Body over the size limit",
        415: "Body not sent as JSON (Content-Type: application/json)",
        422: "Invalid parameters (the detail names each one)",
        429: "Training queue full (see Retry-After)",
        501: "Not implemented yet",
        503: "No model loaded, or the version failed verification",
    }
    return {code: {"model": ErrorResponse, "description": reasons[code]} for code in codes}


class LoadErrorInfo(BaseModel):
    """Why a worker does not serve the registry's active version (it keeps the old one)."""

    version: str = Field(description="The active version that could not be loaded.")
    error: str = Field(description="The failed download or verification.")
    at: str = Field(description="When the last attempt failed (ISO 8601, UTC).")


class Health(BaseModel):
    status: str
    model_version: str | None = None
    reason: str | None = None
    load_error: LoadErrorInfo | None = Field(
        None, description="Set while the registry's active version cannot be loaded here."
    )
    registry: str | None = Field(
        None, description="`ok`, or `unreachable: <why>` (the replica keeps serving from memory)"
    )


class LayerInfo(BaseModel):
    name: str | None = None
    in_: int = Field(alias="in")
    out: int
    activation: str
    bias: bool


class ModelMetadata(BaseModel):
    """A stored version's metadata (the manifest without the loss history)."""

    model_config = ConfigDict(extra="allow")

    version: str
    created_at: str
    features: list[str]
    classes: list[str]
    target: str
    architecture: dict[str, Any]
    preprocessing: dict[str, Any]
    training: dict[str, Any]
    metrics: dict[str, Any]
    sha256: str
    name: str | None = Field(None, description="The served model's name (GET /model only).")
    active: bool | None = Field(None, description="Whether this is the active version.")
    status: str | None = Field(None, description="`ok`, or `invalid` when it failed checks.")
    reason: str | None = Field(None, description="Why an invalid version failed.")
    load_error: LoadErrorInfo | None = Field(
        None, description="GET /model: why the registry's newer active version is not served."
    )


class PredictRequest(BaseModel):
    """Rows in the model's feature order, or objects keyed by feature name."""

    instances: (
        Annotated[list[Annotated[list[float], Field(min_length=1)]], Field(min_length=1)]
        | Annotated[list[Annotated[dict[str, float], Field(min_length=1)]], Field(min_length=1)]
    ) = Field(
        examples=[[[5.1, 3.5], [6.7, 3.1]], [{"sepal_length": 5.1, "sepal_width": 3.5}]],
    )


class Prediction(BaseModel):
    label: str
    probabilities: dict[str, float]


class PredictResponse(BaseModel):
    model_version: str
    predictions: list[Prediction]


class TableData(BaseModel):
    """A caller's own table: named columns, numeric rows and a string label per row."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False, strict=True)

    feature_names: list[FeatureName] = Field(min_length=1, max_length=1000)
    rows: list[list[float]] = Field(min_length=2, max_length=MAX_TABLE_ROWS)
    labels: list[Annotated[str, Field(min_length=1)]] = Field(
        min_length=2, max_length=MAX_TABLE_ROWS
    )

    @model_validator(mode="after")
    def _consistent(self) -> TableData:
        names = self.feature_names
        if len(set(names)) != len(names):
            raise ValueError(f"data.feature_names must be distinct, got {names}")
        width = len(names)
        for i, row in enumerate(self.rows):
            if len(row) != width:
                raise ValueError(
                    f"data.rows[{i}] has {len(row)} values; every row needs {width}, "
                    f"one per name in data.feature_names"
                )
        if len(self.labels) != len(self.rows):
            raise ValueError(
                f"data.labels has {len(self.labels)} entries for {len(self.rows)} rows"
            )
        classes = len(set(self.labels))
        if classes < 2:
            raise ValueError("data.labels must hold at least 2 distinct labels")
        if classes > MAX_CLASSES:
            raise ValueError(f"data.labels may name at most {MAX_CLASSES} classes, got {classes}")
        return self


class TrainRequest(BaseModel):
    """A training job; every field is optional and the defaults give the default model."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False, strict=True)

    features: list[str] | None = Field(
        None, min_length=1, max_length=MAX_TABLE_FEATURES, description="Input features."
    )
    target: Literal["setosa", "versicolor", "virginica", "species"] | None = None
    hidden_units: int | None = Field(None, ge=0, le=64)
    hidden_activation: Literal["sigmoid", "tanh", "relu"] | None = None
    optimizer: Literal["gd", "sgd", "adam", "lbfgs"] | None = Field(
        None,
        description="gd (default; the lecture's full-batch descent), sgd and adam (mini-batch), "
        "lbfgs (full-batch quasi-Newton with a line search: ignores learning_rate; "
        "the fast choice for large tables).",
    )
    learning_rate: float | None = Field(None, gt=0, le=10)
    batch_size: int | None = Field(None, ge=1, le=MAX_BATCH_SIZE)
    max_epochs: int | None = Field(None, ge=1, le=100_000)
    tolerance: float | None = Field(None, ge=0)
    standardize: bool | None = None
    test_fraction: float | None = Field(None, ge=0, le=0.5)
    seed: int | None = Field(None, ge=0, le=2**63 - 1)
    data: TableData | None = None
    activate: bool = True
    min_test_accuracy: float | None = Field(None, ge=0, le=1)

    @model_validator(mode="after")
    def _features(self) -> TrainRequest:
        if self.features is None:
            return self
        if len(set(self.features)) != len(self.features):
            raise ValueError(f"features must be distinct, got {self.features}")
        known = self.data.feature_names if self.data else IRIS_FEATURES
        unknown = [f for f in self.features if f not in known]
        if unknown:
            where = "data.feature_names" if self.data else "the Iris features"
            raise ValueError(f"features {unknown} are not among {where}: {list(known)}")
        if self.data is None and len(self.features) > len(IRIS_FEATURES):
            raise ValueError("features takes 1 to 4 Iris features")
        return self

    @model_validator(mode="after")
    def _data_width(self) -> TrainRequest:
        if self.data and self.features is None and len(self.data.feature_names) > 64:
            raise ValueError(
                f"data has {len(self.data.feature_names)} columns; pick at most 64 with features"
            )
        if self.data and self.target is not None:
            raise ValueError("target does not apply with data: the labels define the classes")
        return self


class JobProgress(BaseModel):
    epoch: int
    max_epochs: int
    loss: float | None


class JobResult(BaseModel):
    model_version: str
    metrics: dict[str, Any]
    activated: bool
    gate_passed: bool


class Job(BaseModel):
    job_id: str
    status: Literal["queued", "running", "succeeded", "failed", "cancelled"]
    status_url: str
    config: dict[str, Any]
    created_at: str
    started_at: str | None
    finished_at: str | None
    progress: JobProgress | None
    history: list[dict[str, Any]]
    result: JobResult | None
    error: str | None
    attempt: int = Field(0, description="Executions so far: more than 1 after a trainer died")


class JobList(BaseModel):
    jobs: list[Job]


class BackpropLayerSpec(BaseModel):
    model_config = ConfigDict(extra="forbid", allow_inf_nan=False, strict=True)

    weights: list[Annotated[list[float], Field(min_length=1)]] = Field(min_length=1)
    bias: list[float] | None = None
    activation: str = "sigmoid"


class BackpropWeights(BaseModel):
    model_config = ConfigDict(extra="forbid")

    layers: list[BackpropLayerSpec] = Field(min_length=1, max_length=16)


MAX_DESCENT_STEPS = 10_000
DEFAULT_DESCENT_LEARNING_RATE = 0.1


class BackpropRequest(BaseModel):
    """One sample and the caller's own weights (or the lecture's), to check a hand
    computation; with ``steps`` also the lecture's gradient descent on that sample."""

    model_config = ConfigDict(
        extra="forbid",
        allow_inf_nan=False,
        strict=True,
        json_schema_extra={
            "examples": [
                {"x": [5.0, 3.0], "label": 1, "weights": "lecture", "steps": 100},
                {
                    "x": [5.0, 3.0],
                    "label": 1,
                    "weights": {
                        "layers": [
                            {"weights": [[1, -1, 3], [2, 2, -1]], "bias": None},
                            {"weights": [[0.1], [0.5], [-0.1]], "bias": None},
                        ]
                    },
                },
            ]
        },
    )

    x: list[float] = Field(min_length=1, max_length=1000)
    label: int | float | str
    weights: BackpropWeights | Literal["lecture"] = Field(
        description='The layers, or "lecture" for the lecture\'s W and V (no bias).'
    )
    learning_rate: float | None = Field(
        None,
        gt=0,
        le=10,
        description="Step size: the trace then shows one step (weights_after_step); the "
        f"descent uses it too (default {DEFAULT_DESCENT_LEARNING_RATE}).",
    )
    steps: int = Field(
        0,
        ge=0,
        le=MAX_DESCENT_STEPS,
        description="Steps of gradient descent on this one sample (0: none). The answer "
        "then adds `descent`: the loss and output before and after each step.",
    )


class Descent(BaseModel):
    """The lecture's last experiment: index 0 is before any step, index k after k steps."""

    steps: int
    learning_rate: float
    loss: list[float] = Field(description="steps + 1 losses")
    output: list[list[float]] = Field(description="steps + 1 output vectors")


class SurfacePoint(BaseModel):
    x: float
    y: float
    species: Literal["setosa", "versicolor", "virginica"]
    class_: str | None = Field(
        alias="class",
        description="The model's class for this flower (null when the model's classes "
        "are not Iris species, e.g. a model trained on a table of one's own).",
    )


class DecisionSurface(BaseModel):
    """Class probabilities over a grid of two features (others held at their means)."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "model_version": "20240501T120000Z-ab12",
                    "features": ["sepal_length", "sepal_width"],
                    "classes": ["not-setosa", "setosa"],
                    "x": [3.8, 8.4],
                    "y": [1.5, 4.9],
                    "held": {},
                    "probabilities": [[[0.1, 0.9], [0.99, 0.01]], [[0.01, 0.99], [0.7, 0.3]]],
                    "labels": [[1, 0], [1, 0]],
                    "points": [
                        {"x": 5.1, "y": 3.5, "species": "setosa", "class": "setosa"},
                    ],
                }
            ]
        }
    )

    model_version: str
    features: list[str] = Field(description="[x feature, y feature]")
    classes: list[str]
    x: list[float] = Field(description="resolution grid values of the x feature (cm)")
    y: list[float] = Field(description="resolution grid values of the y feature (cm)")
    held: dict[str, float] = Field(description="Every other feature and its held value")
    probabilities: list[list[list[float]]] = Field(
        description="[j][i][k]: P(class k) at (x[i], y[j]); row j is y[j]"
    )
    labels: list[list[int]] = Field(description="[j][i]: index of the most probable class")
    points: list[SurfacePoint] = Field(
        description="The 150 Iris flowers when both features are Iris features, else []"
    )


def inline_schema(model: type[BaseModel]) -> dict[str, Any]:
    """A model's JSON schema with its ``$defs`` inlined, for ``openapi_extra`` request
    bodies: OpenAPI has no ``$defs`` there, so a ``$ref`` into them cannot resolve."""
    schema = model.model_json_schema()
    defs = schema.pop("$defs", {})

    def resolve(node: Any) -> Any:
        if isinstance(node, dict):
            ref = node.get("$ref")
            if isinstance(ref, str) and ref.startswith("#/$defs/"):
                return resolve(defs[ref.removeprefix("#/$defs/")])
            return {key: resolve(value) for key, value in node.items()}
        if isinstance(node, list):
            return [resolve(value) for value in node]
        return node

    return dict(resolve(schema))
