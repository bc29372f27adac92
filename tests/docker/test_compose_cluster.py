"""deploy/compose.cluster.yml on top of docker-compose.yml, resolved by Compose itself.

PostgreSQL, an S3 server, a one-shot migration, three API replicas with a cache
each, one trainer and nginx in front: the file says so once Compose has merged
it, and it holds no secret of its own.
"""

from __future__ import annotations

import re
import shutil
from pathlib import Path
from typing import Any

import pytest

from .compose import Compose, mounts, ports, yaml_to_data

SECRETS = {
    "BACKPROP_API_TOKEN": "token-for-the-test",
    "BACKPROP_DB_PASSWORD": "db-password-for-the-test",
    "BACKPROP_S3_ACCESS_KEY": "s3-key-for-the-test",
    "BACKPROP_S3_SECRET_KEY": "s3-secret-for-the-test",
}
FILES = ["-f", "docker-compose.yml", "-f", "deploy/compose.cluster.yml"]
REPLICAS = ("api", "api-2", "api-3")


def project(root: Path, into: Path, env: dict[str, str]) -> Path:
    for name in ("docker-compose.yml", "Dockerfile", ".dockerignore"):
        shutil.copy(root / name, into / name)
    shutil.copytree(root / "deploy", into / "deploy")
    (into / ".env").write_text("".join(f"{k}={v}\n" for k, v in env.items()))
    return into


def resolve(compose: Compose, folder: Path) -> dict[str, Any]:
    done = compose.run(folder, [*FILES, "config"])
    assert done.returncode == 0, done.stderr + done.stdout
    return yaml_to_data(done.stdout, compose.command[0])  # type: ignore[no-any-return]


@pytest.fixture
def cluster(compose_v1: Compose, project_root: Path, tmp_path: Path) -> dict[str, Any]:
    return resolve(compose_v1, project(project_root, tmp_path, SECRETS))


def test_every_part_of_the_cluster_is_there(cluster: dict[str, Any]) -> None:
    services = cluster["services"]
    assert set(services) == {"postgres", "s3", "migrate", *REPLICAS, "trainer", "proxy"}
    assert services["migrate"]["command"] == ["db", "upgrade"]
    assert services["trainer"]["command"] == ["worker"]
    assert services["s3"]["command"][0] == "mini"
    for name in REPLICAS:
        service = services[name]
        assert service["command"] == ["--role", "serve"]
        assert service["image"] == services["trainer"]["image"] == "backprop-serve:latest"
        env = service["environment"]
        assert env["BACKPROP_REGISTRY_URL"].startswith("postgresql://backprop:")
        assert env["BACKPROP_ARTIFACTS_URL"].startswith("s3://")
        assert env["AWS_ENDPOINT_URL"] == "http://s3:8333"
        assert service["depends_on"]["migrate"]["condition"] == "service_completed_successfully"
    assert services["migrate"]["depends_on"]["postgres"]["condition"] == "service_healthy"


def test_each_replica_has_its_own_cache(cluster: dict[str, Any]) -> None:
    caches = []
    for name in (*REPLICAS, "trainer"):
        found = mounts(cluster["services"][name])
        assert [(kind, target) for kind, _, target in found] == [("volume", "/data")], name
        caches.append(found[0][1])
    assert len(set(caches)) == len(caches)


def test_the_proxy_fronts_the_three_replicas_for_http_and_grpc(
    cluster: dict[str, Any], project_root: Path
) -> None:
    proxy = cluster["services"]["proxy"]
    assert ports(proxy) == [("", 8080, 8080), ("", 8081, 8081)]
    (config,) = [m for m in mounts(proxy) if m[2] == "/etc/nginx/nginx.conf"]
    assert Path(config[1]).name == "nginx.conf" and Path(config[1]).exists()
    text = (project_root / "deploy" / "nginx" / "nginx.conf").read_text()
    upstreams = re.findall(r"^\s*server\s+([\w-]+):8000\b", text, re.MULTILINE)
    assert sorted(upstreams) == sorted(REPLICAS)
    assert "proxy_pass http://backprop;" in text
    grpc_upstreams = re.findall(r"^\s*server\s+([\w-]+):8001\b", text, re.MULTILINE)
    assert sorted(grpc_upstreams) == sorted(REPLICAS)
    assert "grpc_pass grpc://backprop_grpc;" in text


def test_no_secret_is_written_in_the_file(
    compose_v1: Compose, project_root: Path, tmp_path: Path
) -> None:
    text = (project_root / "deploy" / "compose.cluster.yml").read_text()
    for name in SECRETS:
        assert "${" + name + ":?" in text, f"{name} must come from .env, and be required"
    for name in SECRETS:  # each one missing is refused with its name
        env = {k: v for k, v in SECRETS.items() if k != name}
        (tmp_path / name).mkdir()
        folder = project(project_root, tmp_path / name, env)
        done = compose_v1.run(folder, [*FILES, "config"])
        assert done.returncode != 0 and name in done.stderr + done.stdout
