"""``POST /predict``. The fast ASGI path answers it first (see ``fastpath``); this
route documents it in the OpenAPI schema and serves it if the fast path is off.
"""

from __future__ import annotations

from fastapi import APIRouter, Query, Request, Response

from ..fastpath import predict_answer
from ..schemas import PredictRequest, PredictResponse, inline_schema

router = APIRouter(tags=["predict"])

_DOC = {
    "requestBody": {
        "required": True,
        "content": {"application/json": {"schema": inline_schema(PredictRequest)}},
    }
}


@router.post(
    "/predict",
    response_model=PredictResponse,
    openapi_extra=_DOC,
    responses={
        404: {"description": "Unknown version"},
        413: {"description": "Body over max_body_bytes"},
        422: {"description": "Not JSON, wrong features, too many rows, non-finite values"},
        503: {"description": "No model loaded"},
    },
)
async def predict(
    request: Request,
    version: str | None = Query(None, description="A stored version instead of the active one"),
) -> Response:
    """Label and class probabilities for 1 to max_batch_rows rows, from one version."""
    body = await request.body()
    status, answer = await predict_answer(request.app.state, body, version or None)
    return Response(answer, status_code=status, media_type="application/json")
