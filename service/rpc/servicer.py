"""``inference.GRPCInferenceService``: the REST V2 routes' answers, as protobuf messages.

Every answer comes from the same objects as REST's: the worker's ``ModelCache``
(so gRPC follows the active version with HTTP, with no loop of its own), the V2
model lookup and metadata (``service.v2.metadata``) and the V2 tensor checks.
"""

from __future__ import annotations

import asyncio
from typing import Any

from ..errors import BadRequest, InvalidInput, ModelNotFound, ModelUnavailable, NoModelLoaded
from ..inference import probabilities
from ..metrics import count_predictions
from ..v2.metadata import model_metadata, servable_versions, served_model, server_metadata
from . import grpc_predict_v2_pb2 as pb
from . import grpc_predict_v2_pb2_grpc as pb_grpc
from .calls import observed
from .tensors import infer_response, parse_infer

SERVICE = "inference.GRPCInferenceService"
METHODS = (
    "ServerLive",
    "ServerReady",
    "ModelReady",
    "ServerMetadata",
    "ModelMetadata",
    "ModelInfer",
)


class InferenceServicer(pb_grpc.GRPCInferenceServiceServicer):  # type: ignore[misc]
    """The six methods of the protocol's gRPC service, over one worker's state."""

    def __init__(self, state: Any, server_version: str) -> None:
        self.state = state
        self.server_version = server_version

    @observed(SERVICE, pb.ServerLiveRequest)
    async def ServerLive(self, request: Any, context: Any) -> Any:
        return pb.ServerLiveResponse(live=True)

    @observed(SERVICE, pb.ServerReadyRequest)
    async def ServerReady(self, request: Any, context: Any) -> Any:
        """Ready when a model is loaded (REST's /v2/health/ready)."""
        return pb.ServerReadyResponse(ready=self.state.cache.active is not None)

    @observed(SERVICE, pb.ModelReadyRequest)
    async def ModelReady(self, request: Any, context: Any) -> Any:
        """NOT_FOUND for another name or an unknown version; ready=false when it cannot serve."""
        try:
            await self._model(request.name, request.version)
        except (NoModelLoaded, ModelUnavailable):
            return pb.ModelReadyResponse(ready=False)
        return pb.ModelReadyResponse(ready=True)

    @observed(SERVICE, pb.ServerMetadataRequest)
    async def ServerMetadata(self, request: Any, context: Any) -> Any:
        return pb.ServerMetadataResponse(**server_metadata(self.server_version))

    @observed(SERVICE, pb.ModelMetadataRequest)
    async def ModelMetadata(self, request: Any, context: Any) -> Any:
        model = await self._model(request.name, request.version)
        versions = await asyncio.to_thread(servable_versions, self.state.store)
        meta = model_metadata(request.name, model, versions)
        tensor = pb.ModelMetadataResponse.TensorMetadata
        return pb.ModelMetadataResponse(
            name=meta["name"],
            versions=meta["versions"],
            platform=meta["platform"],
            inputs=[tensor(**t) for t in meta["inputs"]],
            outputs=[tensor(**t) for t in meta["outputs"]],
        )

    @observed(SERVICE, pb.ModelInferRequest)
    async def ModelInfer(self, request: Any, context: Any) -> Any:
        """Probabilities and labels, as REST's infer answers them."""
        settings = self.state.settings
        active = self.state.cache.active
        name, version = request.model_name, request.model_version or None
        if version is None and active is not None and name == settings.model_name:
            model = active  # the common case, without a coroutine hop
        else:
            model = await self._model(name, version)
        parsed, raw = parse_infer(request, model, settings.max_batch_rows)
        try:
            proba = probabilities(model, parsed.X)
        except InvalidInput as exc:  # finite but overflowing rows: a bad request, as REST
            raise BadRequest(exc.msg.replace("row", "input row", 1)) from None
        count_predictions(model.version, parsed.rows)
        return infer_response(name, model.version, request.id, proba, model.classes, parsed, raw)

    async def _model(self, name: str, version: str | None) -> Any:
        if not name:
            raise ModelNotFound(
                f"no model name given: this server serves {self.state.settings.model_name!r}"
            )
        return await served_model(
            self.state.cache, self.state.settings.model_name, name, version or None
        )
