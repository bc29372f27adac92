"""The Open Inference Protocol (V2) REST endpoints; errors answer ``{"error": "..."}``.

Infer calls are answered by the ASGI fast path (``service.v2.infer``) first; the
infer routes here document them and serve them if the fast path is off.
"""

from __future__ import annotations

import asyncio
from typing import Any

from fastapi import APIRouter, Request, Response

from ..deps import CacheDep, SettingsDep, StoreDep
from ..schemas import inline_schema
from ..v2.infer import infer_answer
from ..v2.metadata import model_metadata, servable_versions, served_model, server_metadata
from ..v2.schemas import (
    ErrorResponse,
    InferenceRequest,
    InferenceResponse,
    ModelList,
    ModelMetadataV2,
    ServerMetadata,
)

router = APIRouter(prefix="/v2", tags=["v2"])

_EMPTY_200: dict[int | str, dict[str, Any]] = {200: {"description": "Yes (empty body)"}}
_NOT_FOUND: dict[int | str, dict[str, Any]] = {
    404: {"model": ErrorResponse, "description": "Unknown model or version"},
    503: {"model": ErrorResponse, "description": "No model loaded, or the version failed checks"},
}
_INFER_DOC = {
    "requestBody": {
        "required": True,
        "content": {
            "application/json": {"schema": inline_schema(InferenceRequest)},
            "application/octet-stream": {
                "schema": {"type": "string", "format": "binary"},
                "description": "The JSON request, then the binary tensors "
                "(Inference-Header-Content-Length gives the JSON's length).",
            },
        },
    }
}
_INFER_ERRORS: dict[int | str, dict[str, Any]] = {
    400: {"model": ErrorResponse, "description": "Bad tensor, datatype, shape or JSON"},
    **_NOT_FOUND,
    413: {"model": ErrorResponse, "description": "Body over max_body_bytes"},
}


@router.get("", response_model=ServerMetadata)
@router.get("/", response_model=ServerMetadata, include_in_schema=False)
async def server(request: Request) -> dict[str, Any]:
    """Server metadata: name, version, and the extensions it supports."""
    return server_metadata(request.app.version)


@router.get("/health/live", response_class=Response, responses=_EMPTY_200)
async def live() -> Response:
    """200 while the process serves."""
    return Response()


@router.get("/health/ready", response_class=Response, responses={**_EMPTY_200, **_NOT_FOUND})
async def ready(cache: CacheDep) -> Response:
    """200 when the model is loaded; 503 with the reason otherwise."""
    cache.current()
    return Response()


@router.get("/models", response_model=ModelList)
async def models(settings: SettingsDep) -> dict[str, Any]:
    """The names of the served models (one)."""
    return {"models": [settings.model_name]}


@router.get("/models/{model_name}", response_model=ModelMetadataV2, responses=_NOT_FOUND)
async def model(model_name: str, settings: SettingsDep, cache: CacheDep, store: StoreDep) -> Any:
    """The active version's inputs and outputs, and the versions that can be asked for."""
    loaded = await served_model(cache, settings.model_name, model_name, None)
    return model_metadata(model_name, loaded, await asyncio.to_thread(servable_versions, store))


@router.get(
    "/models/{model_name}/versions/{model_version}",
    response_model=ModelMetadataV2,
    responses=_NOT_FOUND,
)
async def model_version(
    model_name: str, model_version: str, settings: SettingsDep, cache: CacheDep, store: StoreDep
) -> Any:
    """One stored version's inputs and outputs."""
    loaded = await served_model(cache, settings.model_name, model_name, model_version)
    return model_metadata(model_name, loaded, await asyncio.to_thread(servable_versions, store))


@router.get(
    "/models/{model_name}/ready", response_class=Response, responses={**_EMPTY_200, **_NOT_FOUND}
)
async def model_ready(model_name: str, settings: SettingsDep, cache: CacheDep) -> Response:
    """200 when the active version is loaded."""
    await served_model(cache, settings.model_name, model_name, None)
    return Response()


@router.get(
    "/models/{model_name}/versions/{model_version}/ready",
    response_class=Response,
    responses={**_EMPTY_200, **_NOT_FOUND},
)
async def model_version_ready(
    model_name: str, model_version: str, settings: SettingsDep, cache: CacheDep
) -> Response:
    """200 when that stored version loads and passes its checks."""
    await served_model(cache, settings.model_name, model_name, model_version)
    return Response()


@router.post(
    "/models/{model_name}/infer",
    response_model=InferenceResponse,
    openapi_extra=_INFER_DOC,
    responses=_INFER_ERRORS,
)
async def infer(model_name: str, request: Request) -> Response:
    """Probabilities and labels for N rows from the active version (JSON or binary tensors)."""
    return await _infer(request, model_name, None)


@router.post(
    "/models/{model_name}/versions/{model_version}/infer",
    response_model=InferenceResponse,
    openapi_extra=_INFER_DOC,
    responses=_INFER_ERRORS,
)
async def infer_version(model_name: str, model_version: str, request: Request) -> Response:
    """Probabilities and labels for N rows from one stored version."""
    return await _infer(request, model_name, model_version)


async def _infer(request: Request, name: str, version: str | None) -> Response:
    def raw_header(header: str) -> bytes | None:
        value = request.headers.get(header)
        return value.encode("latin-1") if value is not None else None

    status, headers, body = await infer_answer(
        request.app.state,
        name,
        version,
        await request.body(),
        raw_header("inference-header-content-length"),
        raw_header("content-encoding"),
        raw_header("accept-encoding"),
    )
    raw = {k.decode("latin-1"): v.decode("latin-1") for k, v in headers}
    return Response(body, status_code=status, headers=raw)
