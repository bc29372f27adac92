"""Prometheus scrape endpoint."""

from __future__ import annotations

import asyncio

from fastapi import APIRouter, Response

from ..deps import StoreDep
from ..metrics import exposition, fold_tallies
from ..registry_metrics import registry_exposition

router = APIRouter(tags=["operations"])


@router.get("/metrics", response_class=Response)
async def scrape(store: StoreDep) -> Response:
    """Every metric in the Prometheus text format, summed across workers."""

    def collect() -> tuple[bytes, str]:
        return exposition(registry_exposition(store.registry))

    fold_tallies()  # here, in the event loop's thread, where requests are tallied
    body, content_type = await asyncio.to_thread(collect)
    return Response(body, media_type=content_type)
