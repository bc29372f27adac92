"""The dashboard in a real browser (Debian's Chromium) against a live server."""

from __future__ import annotations

import json
import re

import httpx
import pytest

from tests.service.server import Server

from .conftest import Watched

pytestmark = pytest.mark.timeout(180)

LECTURE = "weights=lecture&x=5&x=3&label=1"


def loaded(w: Watched) -> None:
    """Open the page and wait until every panel has drawn from the server's answers."""
    w.goto("/")
    page = w.page
    page.wait_for_selector("#predict-label")
    page.wait_for_selector('#surface-figure[data-points="150"]')
    page.wait_for_selector("#trace-view .trace-svg")
    page.wait_for_selector("#descent-figure[data-last-loss]")
    page.wait_for_selector(".activation.served")


def no_sideways_scroll(w: Watched) -> None:
    width = w.page.evaluate("document.documentElement.scrollWidth")
    inner = w.page.evaluate("window.innerWidth")
    assert width <= inner, f"the page scrolls sideways: {width} > {inner}"


def test_page_loads_clean_at_laptop_and_phone_width(watched: Watched) -> None:
    loaded(watched)
    assert watched.page.title() == "backprop-serve dashboard"
    no_sideways_scroll(watched)
    watched.screenshot("dashboard-1280-first-load.png")
    watched.page.set_viewport_size({"width": 390, "height": 844})
    loaded(watched)
    no_sideways_scroll(watched)
    watched.screenshot("dashboard-390.png")
    watched.assert_clean()


def probabilities(w: Watched) -> dict[str, float]:
    bars = w.page.locator("#predict-result .bar")
    return {
        bars.nth(i).get_attribute("data-class"): float(bars.nth(i).get_attribute("data-p"))
        for i in range(bars.count())
    }


def test_prediction_updates_as_an_input_changes_and_equals_post_predict(
    watched: Watched, live: Server
) -> None:
    loaded(watched)
    page = watched.page
    before = probabilities(watched)
    page.fill("#pf-sepal_length", "4.4")
    page.fill("#pf-sepal_width", "3.9")
    page.wait_for_function(
        "() => JSON.parse(document.getElementById('predict-result').dataset.row || '{}')"
        ".sepal_width === 3.9"
    )
    after = probabilities(watched)
    assert after != before
    row = json.loads(page.get_attribute("#predict-result", "data-row") or "{}")
    assert row == {"sepal_length": 4.4, "sepal_width": 3.9}
    answer = httpx.post(f"{live.url}/predict", json={"instances": [row]}).json()
    expected = answer["predictions"][0]
    assert after == pytest.approx(expected["probabilities"], rel=1e-12)
    assert page.text_content("#predict-label") == expected["label"]
    # The slider follows the keyboard, and the prediction follows the slider.
    page.focus("#pf-sepal_length-range")
    page.keyboard.press("ArrowRight")
    page.wait_for_function(
        "() => JSON.parse(document.getElementById('predict-result').dataset.row).sepal_length"
        " !== 4.4"
    )
    assert page.input_value("#pf-sepal_length") != "4.4"
    watched.assert_clean()


def test_a_rejected_input_names_the_field(watched: Watched) -> None:
    loaded(watched)
    page = watched.page
    page.fill("#token", "test-token")
    page.fill('#train-form [name="learning_rate"]', "-1")
    page.click("#train-start")
    page.wait_for_selector("#train-error:not([hidden])")
    assert "learning_rate" in (page.text_content("#train-error") or "")
    assert page.get_attribute('#train-form [name="learning_rate"]', "aria-invalid") == "true"
    page.fill("#pf-sepal_width", "")
    page.wait_for_selector("#predict-error:not([hidden])")
    assert "sepal_width" in (page.text_content("#predict-error") or "")
    assert watched.foreign == []
    assert all("422" in e for e in watched.console_errors), watched.console_errors


def test_decision_surface_draws_with_150_points(watched: Watched) -> None:
    loaded(watched)
    page = watched.page
    assert page.locator("#surface-figure .pt").count() == 150
    assert page.locator("#surface-figure image.heat").count() == 1
    titles = page.locator("#surface-figure .axis-title").all_text_contents()
    assert titles == ["sepal length (cm)", "sepal width (cm)"]
    species = {
        page.locator("#surface-figure .pt").nth(i).get_attribute("data-species")
        for i in (0, 75, 149)
    }
    assert species == {"setosa", "versicolor", "virginica"}
    page.select_option("#surface-res", "25")
    page.wait_for_function("() => document.querySelectorAll('#surface-figure .pt').length === 150")
    watched.assert_clean()


def test_training_from_the_page_grows_a_curve_and_lists_the_new_version(
    watched: Watched, live: Server
) -> None:
    loaded(watched)
    page = watched.page
    versions_before = {v["version"] for v in httpx.get(f"{live.url}/models").json()}
    page.fill("#token", live.token)
    form = "#train-form"
    page.fill(f'{form} [name="max_epochs"]', "8000")
    page.fill(f'{form} [name="tolerance"]', "0")
    page.fill(f'{form} [name="seed"]', "3")
    page.uncheck(f'{form} [name="activate"]')
    page.evaluate(
        """() => {
            window.__curve = [];
            const figure = document.getElementById('train-figure');
            new MutationObserver(() => window.__curve.push(Number(figure.dataset.points || 0)))
                .observe(figure, {attributes: true, attributeFilter: ['data-points']});
        }"""
    )
    page.click("#train-start")
    page.wait_for_function(
        "() => /succeeded|failed/.test(document.getElementById('train-status').textContent)",
        timeout=90_000,
    )
    status = page.text_content("#train-status") or ""
    assert "succeeded" in status, status
    new = re.search(r"new version ([\w.-]+)", status)
    assert new, status
    version = new.group(1)
    assert version not in versions_before
    page.wait_for_selector(f'#versions tr[data-version="{version}"]')
    curve = page.evaluate("window.__curve")
    assert max(curve) > 1, curve
    assert any(b > a > 0 for a, b in zip(curve, curve[1:], strict=False)), curve
    assert page.locator("#train-loss-line").count() == 1
    # The token lives in sessionStorage only.
    storage = page.evaluate("[localStorage.length, sessionStorage.length, document.cookie]")
    assert storage == [0, 1, ""]
    watched.screenshot("dashboard-1280.png")  # the whole page, with a training curve
    watched.assert_clean()
    # Activate the new version from the list (a wrong token is refused first), then roll back.
    active = httpx.get(f"{live.url}/model").json()["version"]
    page.fill("#token", "wrong-token")
    page.click(f'#versions tr[data-version="{version}"] button')
    page.wait_for_selector("#versions-error:not([hidden])")
    assert "403" in (page.text_content("#versions-error") or "")
    page.fill("#token", live.token)
    page.click(f'#versions tr[data-version="{version}"] button')
    page.wait_for_selector(f'#versions tr.active-row[data-version="{version}"]')
    assert version in (page.text_content("#model-card") or "")
    assert httpx.get(f"{live.url}/model").json()["version"] == version
    rollback = page.locator(f'#versions tr[data-version="{active}"] button')
    assert rollback.text_content() == "Roll back"
    rollback.click()
    page.wait_for_selector(f'#versions tr.active-row[data-version="{active}"]')
    assert httpx.get(f"{live.url}/model").json()["version"] == active
    assert watched.http_errors == [f"403 {live.url}/models/{version}/activate"]


def trace_numbers(w: Watched) -> None:
    page = w.page
    text = page.text_content("#trace-view") or ""
    assert "0.52699" in text
    assert "-1.69383" in text
    assert page.locator("#trace-view .trace-svg .node").count() >= 6
    assert page.locator("#trace-view .node.saturated").count() == 2


def test_lecture_trace_is_drawn_with_its_numbers_and_chain_rule(watched: Watched) -> None:
    loaded(watched)
    page = watched.page
    page.select_option("#trace-weights", "active")
    page.wait_for_function(
        "() => !document.querySelector('#trace-view').textContent.includes('lecture')"
    )
    page.click("#trace-lecture")
    page.wait_for_function(
        "() => document.querySelector('#trace-view').textContent.includes('0.52699')"
    )
    trace_numbers(watched)
    # Focusing an edge shows the chain-rule product behind its gradient.
    edge = page.locator('#trace-view [data-id="e-2-0-0"]')
    edge.focus()
    explain = page.text_content("#trace-view .explain") or ""
    assert "dJ/dV1 = dJ/dy · y(1−y) · h1" in explain
    assert "-1.69383 × 0.59038 × 0.40962 × 0.99998 = -0.40962" in explain
    page.locator('#trace-view [data-id="n-1-0"]').hover()
    assert "saturated" in (page.text_content("#trace-view .explain") or "")
    watched.assert_clean()


def test_standalone_trace_page_for_the_lecture_and_the_active_model(watched: Watched) -> None:
    page = watched.page
    watched.goto(f"/backprop?format=html&{LECTURE}")
    page.wait_for_selector("#trace-view .trace-svg")
    trace_numbers(watched)
    no_sideways_scroll(watched)
    page.locator('#trace-view [data-id="e-2-0-0"]').focus()  # shows dJ/dV1's chain rule
    assert "dJ/dV1" in (page.text_content("#trace-view .explain") or "")
    watched.screenshot("trace.png")
    watched.goto("/backprop?format=html&sepal_length=5.0&sepal_width=3.4&label=setosa")
    page.wait_for_selector("#trace-view .trace-svg")
    assert page.locator("#trace-view .trace-svg .node").count() >= 6
    assert "sepal length" in (page.text_content("#trace-view") or "")
    watched.assert_clean()


def test_single_sample_descent_plot_shows_a_falling_loss(watched: Watched) -> None:
    loaded(watched)
    page = watched.page
    figure = page.locator("#descent-figure")
    for label in ("1", "0"):
        if label == "0":
            page.select_option('#descent-form [name="label"]', "0")
            page.click('#descent-form button[type="submit"]')
            page.wait_for_function(
                "() => document.getElementById('descent-summary').textContent.startsWith('label 0')"
            )
        first = float(figure.get_attribute("data-first-loss") or "nan")
        last = float(figure.get_attribute("data-last-loss") or "nan")
        assert figure.get_attribute("data-steps") == "100"
        assert last < first / 5, (label, first, last)
        points = (page.get_attribute("#descent-loss", "points") or "").split()
        assert len(points) == 101
        ys = [float(p.split(",")[1]) for p in points]  # SVG y grows downwards
        assert ys[-1] > ys[0]
        assert page.locator("#descent-figure .dots circle").count() == 101
    watched.assert_clean()


def test_docs_render_their_operations_offline(watched: Watched) -> None:
    page = watched.page
    watched.goto("/docs")
    page.wait_for_selector(".opblock")
    paths = set(page.locator(".opblock-summary-path").all_text_contents())
    for path in ("/predict", "/model/decision-surface", "/train/{job_id}/events", "/"):
        assert any(p.replace("\u200b", "") == path for p in paths), (path, sorted(paths))
    watched.assert_clean()


def test_redoc_renders_offline(watched: Watched) -> None:
    watched.goto("/redoc")
    watched.page.get_by_text("/model/decision-surface").first.wait_for()
    watched.assert_clean()


def test_page_passes_axe_with_no_serious_violation(watched: Watched) -> None:
    axe_module = pytest.importorskip("axe_playwright_python.sync_playwright")
    axe = axe_module.Axe()
    loaded(watched)
    for path in ("/", "/ at 390 px", f"/backprop?format=html&{LECTURE}"):
        if path == "/ at 390 px":
            watched.page.set_viewport_size({"width": 390, "height": 844})
            loaded(watched)
        elif path != "/":
            watched.goto(path)
            watched.page.wait_for_selector("#trace-view .trace-svg")
        results = axe.run(watched.page)
        bad = [
            (v["id"], v["impact"], [n["target"] for n in v["nodes"]][:5])
            for v in results.response["violations"]
            if v["impact"] in ("critical", "serious")
        ]
        assert bad == [], (path, bad)
    watched.assert_clean()


def test_training_falls_back_to_polling_when_the_event_stream_fails(
    watched: Watched, live: Server
) -> None:
    loaded(watched)
    page = watched.page
    page.route("**/train/*/events", lambda route: route.fulfill(status=503, body="down"))
    page.fill("#token", live.token)
    page.fill('#train-form [name="max_epochs"]', "300")
    page.uncheck('#train-form [name="activate"]')
    page.click("#train-start")
    page.wait_for_function(
        "() => /succeeded|failed/.test(document.getElementById('train-status').textContent)",
        timeout=90_000,
    )
    status = page.text_content("#train-status") or ""
    assert "succeeded" in status, status
    assert int(page.get_attribute("#train-figure", "data-points") or 0) > 1
    version = re.search(r"new version ([\w.-]+)", status)
    assert version, status
    page.wait_for_selector(f'#versions tr[data-version="{version.group(1)}"]')
    assert watched.foreign == []
    assert all("/events" in e for e in watched.http_errors), watched.http_errors
