"""deploy/k8s: each overlay built by `kubectl kustomize`, validated, and read for what it promises.

`kubernetes-validate --strict` checks every built object against the Kubernetes
schemas bundled in that package (no network: the package carries them, per
Kubernetes version); the KServe kinds are custom resources it has no schema for,
so their fields are checked here by hand.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from service.app import create_app
from service.settings import Settings

from ..system import apt_install

ROOT = Path(__file__).resolve().parents[2]
OVERLAYS = ROOT / "deploy" / "k8s" / "overlays"
UID = 10001
SECRET_ENV = ("BACKPROP_API_TOKEN", "BACKPROP_REGISTRY_URL", "AWS_SECRET_ACCESS_KEY")


def kubectl() -> str:
    if shutil.which("kubectl") is None:
        apt_install("kubernetes-client", "kubectl")
    found = shutil.which("kubectl")
    assert found is not None
    return found


def validator() -> str:
    beside_python = Path(sys.executable).parent / "kubernetes-validate"
    found = str(beside_python) if beside_python.exists() else shutil.which("kubernetes-validate")
    if found is None:
        pytest.fail("kubernetes-validate is missing: install the test extra")
    return found


def build(overlay: str) -> str:
    done = subprocess.run(
        [kubectl(), "kustomize", str(OVERLAYS / overlay)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


@pytest.fixture(scope="module", params=["plain", "kserve"])
def built(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Any:
    text = build(request.param)
    path = tmp_path_factory.mktemp("k8s") / f"{request.param}.yaml"
    path.write_text(text)
    objects = [o for o in yaml.safe_load_all(text) if o]
    return request.param, path, objects


def by_kind(objects: list[dict[str, Any]], kind: str) -> list[dict[str, Any]]:
    return [o for o in objects if o["kind"] == kind]


def pod_specs(objects: list[dict[str, Any]]) -> list[tuple[str, dict[str, Any]]]:
    """Every pod template's spec (ServingRuntime's spec is one too), by object name."""
    found = []
    for o in objects:
        if o["kind"] in ("Deployment", "Job"):
            found.append((o["metadata"]["name"], o["spec"]["template"]["spec"]))
        elif o["kind"] == "ServingRuntime":
            found.append((o["metadata"]["name"], o["spec"]))
    return found


def routes() -> set[str]:
    """The paths the app serves, as its own OpenAPI document lists them."""
    app = create_app(Settings(api_token="x"))
    return set(app.openapi()["paths"])


def test_validates_strictly_against_the_bundled_schemas(built: Any) -> None:
    name, path, _ = built
    done = subprocess.run(
        [validator(), "--strict", str(path)], capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "passed" in done.stdout


def test_the_validator_rejects_an_unknown_field(tmp_path: Path) -> None:
    """The check above can fail: a misspelt field is refused under --strict."""
    bad = yaml.safe_load_all(build("plain"))
    objects = [o for o in bad if o]
    deployment = next(o for o in objects if o["kind"] == "Deployment")
    deployment["spec"]["replica"] = 3
    path = tmp_path / "bad.yaml"
    path.write_text(yaml.safe_dump(deployment))
    done = subprocess.run([validator(), "--strict", str(path)], capture_output=True, text=True)
    assert done.returncode != 0, done.stdout


def test_probes_name_paths_the_app_serves(built: Any) -> None:
    _, _, objects = built
    served = routes()
    seen = set()
    for owner, spec in pod_specs(objects):
        for container in spec["containers"]:
            for probe in ("startupProbe", "livenessProbe", "readinessProbe"):
                if probe in container:
                    path = container[probe]["httpGet"]["path"]
                    assert path in served, f"{owner}/{container['name']} {probe} {path}"
                    seen.add(path)
    assert {"/health/live", "/health/ready"} <= seen


def test_pods_are_non_root_read_only_with_a_writable_cache(built: Any) -> None:
    _, _, objects = built
    specs = pod_specs(objects)
    assert specs
    for owner, spec in specs:
        pod = spec.get("securityContext", {})
        for container in spec["containers"]:
            context = {**pod, **container.get("securityContext", {})}
            assert context.get("runAsNonRoot") is True, owner
            assert context.get("runAsUser") == UID, owner
            assert context.get("readOnlyRootFilesystem") is True, owner
            assert context.get("allowPrivilegeEscalation") is False, owner
            assert context["capabilities"]["drop"] == ["ALL"], owner
            assert "resources" in container and container["resources"]["limits"]["memory"]
        if owner.endswith("migrate"):
            continue  # writes nothing
        volumes = {v["name"]: v for v in spec["volumes"]}
        mounts = {m["mountPath"]: m["name"] for c in spec["containers"] for m in c["volumeMounts"]}
        assert "emptyDir" in volumes[mounts["/cache"]], owner
        assert "emptyDir" in volumes[mounts["/tmp"]], owner  # metrics files, temp files
    config = by_kind(objects, "ConfigMap")[0]["data"]
    assert config["BACKPROP_MODEL_DIR"] == "/cache"
    assert config["BACKPROP_ARTIFACTS_URL"].startswith("s3://")


def test_secrets_are_referenced_never_committed(built: Any) -> None:
    _, _, objects = built
    assert not by_kind(objects, "Secret")
    for owner, spec in pod_specs(objects):
        for container in spec["containers"]:
            env = {e["name"]: e for e in container.get("env", [])}
            for name in SECRET_ENV:
                if name in env:
                    assert "secretKeyRef" in env[name]["valueFrom"], f"{owner}: {name}"
    for config in by_kind(objects, "ConfigMap"):
        assert not set(config["data"]) & {*SECRET_ENV, "AWS_ACCESS_KEY_ID"}


def test_plain_overlay_scales_and_survives_disruption() -> None:
    objects = [o for o in yaml.safe_load_all(build("plain")) if o]
    deployments = {o["metadata"]["name"]: o for o in by_kind(objects, "Deployment")}
    api = deployments["backprop-serve-api"]
    trainer = deployments["backprop-serve-trainer"]
    assert api["spec"]["replicas"] >= 2
    container = api["spec"]["template"]["spec"]["containers"][0]
    assert container["args"] == ["--role", "serve"]
    assert trainer["spec"]["template"]["spec"]["containers"][0]["args"] == ["worker"]
    (hpa,) = by_kind(objects, "HorizontalPodAutoscaler")
    assert hpa["spec"]["scaleTargetRef"]["name"] == "backprop-serve-api"
    assert hpa["spec"]["minReplicas"] >= 2
    (pdb,) = by_kind(objects, "PodDisruptionBudget")
    assert pdb["spec"]["minAvailable"] < min(hpa["spec"]["minReplicas"], api["spec"]["replicas"])
    labels = api["spec"]["template"]["metadata"]["labels"]
    assert pdb["spec"]["selector"]["matchLabels"].items() <= labels.items()
    (service,) = by_kind(objects, "Service")
    assert service["spec"]["selector"].items() <= labels.items()
    (job,) = by_kind(objects, "Job")
    assert job["spec"]["template"]["spec"]["containers"][0]["args"] == ["db", "upgrade"]


def test_kserve_overlay_runs_our_image_on_the_v2_protocol() -> None:
    objects = [o for o in yaml.safe_load_all(build("kserve")) if o]
    (runtime,) = by_kind(objects, "ServingRuntime")
    (isvc,) = by_kind(objects, "InferenceService")
    assert runtime["apiVersion"] == "serving.kserve.io/v1alpha1"
    assert isvc["apiVersion"] == "serving.kserve.io/v1beta1"
    assert "v2" in runtime["spec"]["protocolVersions"]
    model = isvc["spec"]["predictor"]["model"]
    assert model["protocolVersion"] == "v2"
    assert model["runtime"] == runtime["metadata"]["name"]
    formats = {f["name"] for f in runtime["spec"]["supportedModelFormats"]}
    assert model["modelFormat"]["name"] in formats
    (container,) = runtime["spec"]["containers"]
    trainer = by_kind(objects, "Deployment")[0]["spec"]["template"]["spec"]["containers"][0]
    assert container["image"] == trainer["image"] and container["image"].startswith(
        "backprop-serve:"
    )
    env = {e["name"]: e.get("value") for e in container["env"]}
    assert env["BACKPROP_MODEL_NAME"] == isvc["metadata"]["name"]  # /v2/models/<name>/...
    assert isvc["spec"]["predictor"]["minReplicas"] >= 2
    # KServe runs the API: the base's own API objects are gone.
    assert not by_kind(objects, "HorizontalPodAutoscaler")
    assert not by_kind(objects, "Service")
