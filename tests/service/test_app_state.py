"""``AppState``: Starlette's state, with each value also a plain attribute."""

from __future__ import annotations

import pytest

from service.app import AppState


def test_values_are_attributes_and_starlette_state_entries_alike() -> None:
    state = AppState()
    state.cache = "c"
    assert state.cache == "c" and state._state == {"cache": "c"}
    assert vars(state)["cache"] == "c"  # found by the normal lookup, no __getattr__
    state.cache = "d"
    assert state.cache == "d" and state._state["cache"] == "d"
    del state.cache
    assert "cache" not in state._state and "cache" not in vars(state)
    with pytest.raises(AttributeError):
        _ = state.cache


def test_the_service_app_uses_it(tmp_path: object) -> None:
    from service.app import create_app
    from service.settings import Settings

    app = create_app(Settings(model_dir=str(tmp_path), api_token="t", grpc_port=0))
    assert isinstance(app.state, AppState)
    assert vars(app.state)["settings"] is app.state._state["settings"]
