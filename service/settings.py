"""Service settings, read from ``BACKPROP_*`` environment variables."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict


class Settings(BaseSettings):
    """Everything the service can be told; each field is ``BACKPROP_<NAME>``."""

    model_config = SettingsConfigDict(
        env_prefix="BACKPROP_", extra="ignore", use_attribute_docstrings=True
    )

    model_dir: Path = Path("./models")
    """The model store: one folder per version plus the SQLite registry."""

    api_token: SecretStr | None = None
    """Bearer token for mutating calls; a random one is made and logged when unset."""

    host: str = "127.0.0.1"
    """Interface the server binds to (0.0.0.0 to listen on every interface)."""

    port: int = Field(8000, ge=0, le=65535)
    """TCP port of the server."""

    workers: int = Field(1, ge=1, le=64)
    """Number of uvicorn worker processes."""

    model_name: str = Field("iris-net", pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")
    """Name of the served model in the V2 protocol and in GET /model."""

    max_batch_rows: int = Field(10_000, ge=1)
    """Most rows one /predict request may carry."""

    max_body_bytes: int = Field(2 * 1024 * 1024, ge=1024)
    """Largest /predict (and V2 infer) body; larger is a 413."""

    max_train_body_bytes: int = Field(64 * 1024 * 1024, ge=1024)
    """Largest /train body (inline data of up to 100,000 rows)."""

    log_level: Literal["debug", "info", "warning", "error", "critical"] = "info"
    """Log level of the service and uvicorn."""

    log_format: Literal["text", "json"] = "text"
    """`text` for people, `json` (one object per line) for log shippers."""

    train_on_empty: bool = True
    """Train the lecture's default model at start when the store holds no version."""

    train_queue_size: int = Field(8, ge=1, le=1000)
    """Most queued training jobs; one more is answered 429 with Retry-After."""

    train_wait_seconds: float = Field(60.0, gt=0, le=3600)
    """Longest a `POST /train?wait=true` call waits before answering 202."""

    reload_interval: float = Field(0.25, gt=0, le=10)
    """Seconds between checks of the registry's active version in each worker."""

    job_stale_seconds: float = Field(10.0, gt=1, le=3600)
    """A running job's lease; once it runs out the job is queued again (or failed)."""

    # -- many machines: the registry and the roles (issue 11) -----------------

    registry_url: str | None = None
    """Registry database: unset for the SQLite file in the model store, or postgresql://..."""

    registry_listen: bool = True
    """Listen for PostgreSQL notifications of activations (the poll runs either way)."""

    role: Literal["all", "serve", "worker"] = "all"
    """`all` serves and trains; `serve` never trains; `worker` trains and serves nothing."""

    job_timeout_seconds: float = Field(3600.0, gt=0, le=7 * 86400)
    """Longest a training job may run; then it is cancelled with this reason."""

    job_max_attempts: int = Field(3, ge=1, le=100)
    """Executions a job may get when its trainer dies (each lost lease is one)."""

    max_running_jobs: int = Field(1, ge=1, le=1000)
    """Most jobs training at once across every process on the registry."""

    # -- many machines: where the artefacts live (issue 11) --------------------

    artifacts_url: str | None = None
    """Where versions live: unset for BACKPROP_MODEL_DIR, or s3://bucket/prefix (its cache)."""

    @field_validator("artifacts_url")
    @classmethod
    def _artifacts_url_form(cls, value: str | None) -> str | None:
        if not value:
            return None
        if value.startswith("s3://"):
            if not value[len("s3://") :].split("/", 1)[0]:
                raise ValueError("an s3:// URL needs a bucket: s3://bucket/prefix")
        elif "://" in value and not value.startswith("file://"):
            raise ValueError("use a folder path or s3://bucket/prefix")
        return value

    events_ping_seconds: float = Field(10.0, gt=0, le=300)
    """Seconds between keep-alive comments on a job's event stream (GET /train/{id}/events)."""

    grpc_port: int = Field(8001, ge=0, le=65535)
    """Port of the gRPC server (the Open Inference Protocol); 0 or empty turns it off."""

    grpc_max_message_bytes: int = Field(4 * 1024 * 1024, ge=1024)
    """Largest gRPC message in either direction; a larger one is RESOURCE_EXHAUSTED."""

    @field_validator("grpc_port", mode="before")
    @classmethod
    def _empty_grpc_port_is_off(cls, value: object) -> object:
        return 0 if value == "" else value

    # -- reliability and security (issue 10) ------------------------------------

    cors_origins: Annotated[list[str], NoDecode] = []
    """Origins allowed to call from a browser (comma-separated, or `*`); CORS is off when empty."""

    header_timeout_seconds: float = Field(10.0, gt=0, le=300)
    """Longest a client may take to send a request's line and headers; then 408 and close."""

    body_timeout_seconds: float = Field(30.0, gt=0, le=3600)
    """Longest a request body may take after its head, plus one second per 64 KiB it
    brings (a big upload at a fair rate gets the time it needs); then 408 and close."""

    max_header_bytes: int = Field(64 * 1024, ge=1024, le=16 * 1024 * 1024)
    """Largest request line plus headers; larger is a 431 and the connection is closed."""

    keep_alive_seconds: int = Field(5, ge=1, le=600)
    """An idle keep-alive connection is closed after this (uvicorn's timeout_keep_alive)."""

    max_train_epochs: int = Field(100_000, ge=1, le=100_000)
    """Most epochs a training job may ask for (above is a 422; the default is capped to it)."""

    test_write_delay_seconds: float = Field(0.0, ge=0, le=600)
    """TEST ONLY: sleep this long in the middle of writing a model (crash-safety tests)."""

    @field_validator("cors_origins", mode="before")
    @classmethod
    def _origins_list(cls, value: object) -> object:
        if isinstance(value, str):
            text = value.strip()
            if text.startswith("["):
                import json

                return json.loads(text)
            return [part.strip() for part in text.split(",") if part.strip()]
        return value

    @field_validator("api_token", mode="before")
    @classmethod
    def _empty_token_is_unset(cls, value: object) -> object:
        return None if value == "" else value
