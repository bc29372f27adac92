"""The V2 protocol's JSON objects, for the OpenAPI page (the infer path parses by hand)."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field

Parameters = dict[str, str | int | float | bool]
TensorData = list[Any]


class ServerMetadata(BaseModel):
    name: str
    version: str
    extensions: list[str]


class ModelList(BaseModel):
    models: list[str] = Field(description="Names of the models this server serves.")


class MetadataTensor(BaseModel):
    name: str
    datatype: str
    shape: list[int] = Field(description="-1 marks a variable dimension (the batch).")


class ModelMetadataV2(BaseModel):
    name: str
    versions: list[str] = Field(description="Stored versions a versioned path can serve.")
    platform: str
    inputs: list[MetadataTensor]
    outputs: list[MetadataTensor]


class RequestInput(BaseModel):
    name: str = Field(examples=["features"])
    shape: list[int] = Field(examples=[[1, 2]])
    datatype: str = Field(description="FP32 or FP64.", examples=["FP32"])
    parameters: Parameters | None = Field(
        None, description="`binary_data_size`: the tensor's bytes follow the JSON header."
    )
    data: TensorData | None = Field(
        None, description="Row-major values, flat or nested.", examples=[[5.1, 3.5]]
    )


class RequestOutput(BaseModel):
    name: str = Field(description="`probabilities` or `label`.")
    parameters: Parameters | None = Field(
        None, description="`binary_data: true` answers the tensor as bytes after the JSON."
    )


class InferenceRequest(BaseModel):
    """An inference request; binary tensors follow the JSON when
    `Inference-Header-Content-Length` gives the JSON's length."""

    id: str | None = None
    parameters: Parameters | None = Field(
        None, description="`binary_data_output: true` answers every output as bytes."
    )
    inputs: list[RequestInput] = Field(min_length=1, max_length=1)
    outputs: list[RequestOutput] | None = None


class ResponseOutput(BaseModel):
    name: str
    shape: list[int]
    datatype: str
    parameters: Parameters | None = None
    data: TensorData | None = None


class InferenceResponse(BaseModel):
    """Outputs `probabilities` (FP32, [N, n_classes], columns in the model's `classes`
    order) and `label` (BYTES, [N])."""

    model_name: str
    model_version: str
    id: str | None = None
    parameters: Parameters | None = None
    outputs: list[ResponseOutput]


class ErrorResponse(BaseModel):
    error: str
