"""Server-side bounds on training requests that an operator can tighten by setting.

``BACKPROP_MAX_TRAIN_EPOCHS`` caps ``max_epochs`` below the schema's 100,000: a
job asking for more is a 422 naming the field, a job that does not say gets the
default or the cap, whichever is smaller, and the served OpenAPI schema states the
cap (``service.openapi``: clients and fuzzers see the contract the server enforces).
"""

from __future__ import annotations

from typing import Any

from .errors import InvalidInput

SCHEMA_MAX_EPOCHS = 100_000


def bound_epochs(given: dict[str, Any], default: int, limit: int) -> None:
    """Apply the cap to a job's fields in place; a 422 when ``max_epochs`` exceeds it."""
    asked = given.get("max_epochs")
    if asked is None:
        if default > limit:
            given["max_epochs"] = limit
        return
    if asked > limit:
        raise InvalidInput(
            ["body", "max_epochs"],
            f"max_epochs is at most {limit} on this server (BACKPROP_MAX_TRAIN_EPOCHS), "
            f"got {asked}",
            "less_than_equal",
        )
