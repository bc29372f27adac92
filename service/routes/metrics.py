"""Prometheus scrape endpoint."""

from __future__ import annotations

import asyncio

from fastapi import APIRouter, Response

from ..metrics import exposition

router = APIRouter(tags=["operations"])


@router.get("/metrics", response_class=Response)
async def scrape() -> Response:
    """Every metric in the Prometheus text format, summed across workers."""
    body, content_type = await asyncio.to_thread(exposition)
    return Response(body, media_type=content_type)
