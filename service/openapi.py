"""``/openapi.json`` as the contract states it, where FastAPI's own schema says otherwise:

- ``max_epochs`` shows this server's cap (``BACKPROP_MAX_TRAIN_EPOCHS``) when it is
  below the schema's;
- the V2 routes answer a bad request with 400 ``{"error": ...}`` (the protocol's),
  never FastAPI's 422, which FastAPI lists on every route with parameters.
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI

from .limits import SCHEMA_MAX_EPOCHS

V2_PREFIX = "/v2"


def state_contract_in_openapi(app: FastAPI, max_epochs: int) -> None:
    """Make ``app.openapi()`` build FastAPI's schema once, then amend it as above."""
    build = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            schema = build()
            if max_epochs < SCHEMA_MAX_EPOCHS:
                _cap_max_epochs(schema, max_epochs)
            _drop_v2_validation_errors(schema)
            app.openapi_schema = schema
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]


def _cap_max_epochs(schema: dict[str, Any], max_epochs: int) -> None:
    field = schema["components"]["schemas"]["TrainRequest"]["properties"]["max_epochs"]
    for option in field.get("anyOf", [field]):
        if option.get("type") == "integer":
            option["maximum"] = max_epochs


def _drop_v2_validation_errors(schema: dict[str, Any]) -> None:
    for path, item in schema.get("paths", {}).items():
        if path == V2_PREFIX or path.startswith(V2_PREFIX + "/"):
            for operation in item.values():
                operation.get("responses", {}).pop("422", None)
