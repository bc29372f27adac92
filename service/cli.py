"""``backprop-serve``: the service's command line.

- ``backprop-serve [--role all|serve]``: uvicorn on the service, one or several
  workers (``all``, the default, also trains; ``serve`` never does);
- ``backprop-serve worker``: trains queued jobs and serves no API;
- ``backprop-serve db upgrade``: migrates the registry's schema (Alembic).
"""

from __future__ import annotations

import argparse
import logging
import os
import shutil
import signal
import sys
import tempfile
from pathlib import Path

from pydantic import ValidationError

from .logs import configure_logging
from .process import pid_alive
from .settings import Settings
from .slowclient_choice import http_protocol

log = logging.getLogger("backprop.cli")

MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"
METRICS_PREFIX = "backprop-metrics-"


def _settings_help() -> str:
    lines = ["settings (environment variables):"]
    for name, field in Settings.model_fields.items():
        default = field.default
        shown = "unset" if default is None else default
        lines.append(f"  BACKPROP_{name.upper():<24} {field.description or ''} [{shown}]")
    return "\n".join(lines)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="backprop-serve",
        description="Serve the lecture's neural network over HTTP (FastAPI on uvicorn).",
        epilog=_settings_help(),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--host", help="interface to bind (overrides BACKPROP_HOST)")
    parser.add_argument("--port", type=int, help="TCP port (overrides BACKPROP_PORT)")
    parser.add_argument("--workers", type=int, help="worker processes (overrides BACKPROP_WORKERS)")
    parser.add_argument(
        "--role",
        choices=("all", "serve"),
        help="all: serve and train (the default); serve: never train (overrides BACKPROP_ROLE)",
    )
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")
    commands.add_parser(
        "worker",
        help="train queued jobs and serve no API (only metrics on the port)",
        description="Claim training jobs from the registry and train them; serve no API.",
    )
    db = commands.add_parser(
        "db", help="the registry database", description="Manage the registry database."
    )
    db_commands = db.add_subparsers(dest="db_command", metavar="ACTION", required=True)
    db_commands.add_parser(
        "upgrade",
        help="apply the registry's migrations (safe to run from several processes at once)",
        description="Apply the registry's Alembic migrations to BACKPROP_REGISTRY_URL.",
    )
    return parser


def _metrics_dir(workers: int) -> str | None:
    """A fresh folder for Prometheus' per-worker files when several workers share the
    metrics; None when the caller set one, or for one worker, whose samples stay in
    memory (several times cheaper per request than the files' locked writes)."""
    given = os.environ.get(MULTIPROC_ENV)
    if given:
        os.makedirs(given, exist_ok=True)
        for name in os.listdir(given):
            if name.endswith(".db"):
                os.remove(os.path.join(given, name))
        return None
    _remove_orphaned_metrics_dirs()
    if workers == 1:
        return None
    made = tempfile.mkdtemp(prefix=f"{METRICS_PREFIX}{os.getpid()}-")
    os.environ[MULTIPROC_ENV] = made
    return made


def _remove_orphaned_metrics_dirs() -> None:
    """Remove the folders of servers that were killed before they could clean up."""
    for path in Path(tempfile.gettempdir()).glob(f"{METRICS_PREFIX}*-*"):
        pid = path.name[len(METRICS_PREFIX) :].split("-", 1)[0]
        if pid.isdigit() and not pid_alive(int(pid)):
            shutil.rmtree(path, ignore_errors=True)


def _stopped(signum: int, frame: object) -> None:
    """SIGTERM after uvicorn's graceful shutdown: nothing left to do."""


def _db_upgrade(settings: Settings) -> None:
    """``backprop-serve db upgrade``: one process migrates, concurrent ones wait and succeed."""
    from .registry import default_url, engine_for, migrate

    engine = engine_for(settings.registry_url or default_url(settings.model_dir))
    where = engine.url.render_as_string(hide_password=True)
    try:
        before, after = migrate.upgrade(engine)
    except Exception as exc:
        sys.exit(f"backprop-serve: db upgrade of {where} failed: {exc}")
    finally:
        engine.dispose()
    if before == after:
        print(f"registry {where}: schema already at revision {after}")  # noqa: T201
    else:
        print(f"registry {where}: migrated from {before or 'empty'} to revision {after}")  # noqa: T201


def _check_registry(settings: Settings) -> None:
    """Refuse to start on a registry whose schema is not this code's (names the command)."""
    from .registry import RegistryUnavailableError, SchemaOutdatedError, default_url, open_registry

    url = settings.registry_url or default_url(settings.model_dir)
    where = _hide_password(url)
    try:
        open_registry(url).close()
    except SchemaOutdatedError as exc:
        sys.exit(f"backprop-serve: {exc}")
    except (RegistryUnavailableError, OSError) as exc:
        sys.exit(f"backprop-serve: cannot open the model registry {where}: {exc}")
    except Exception as exc:  # e.g. the database refused the connection, or is no database
        cause = getattr(exc, "orig", None) or exc
        first = (str(cause).strip().splitlines() or [type(cause).__name__])[0]
        sys.exit(f"backprop-serve: cannot open the model registry {where}: {first}")


def _hide_password(url: str) -> str:
    """The registry URL as logs may show it (no password)."""
    if url.startswith("sqlite"):  # no password to hide, and no SQLAlchemy to import for it
        return url
    from sqlalchemy.engine import make_url

    try:
        return make_url(url).render_as_string(hide_password=True)
    except Exception:
        return url.split("@")[-1]


def _worker(settings: Settings) -> None:
    import asyncio

    from .worker import run_worker, serve_metrics

    _check_registry(settings)
    serve_metrics(settings)
    asyncio.run(run_worker(settings))


def main(argv: list[str] | None = None) -> None:
    args = _parser().parse_args(argv)
    for name in ("host", "port", "workers", "role"):
        value = getattr(args, name)
        if value is not None:
            os.environ[f"BACKPROP_{name.upper()}"] = str(value)
    if args.command == "worker":
        os.environ["BACKPROP_ROLE"] = "worker"
    try:
        settings = Settings()
    except ValidationError as exc:
        sys.exit(f"backprop-serve: invalid settings: {exc}")
    configure_logging(settings.log_level, settings.log_format)
    if args.command == "db":
        _db_upgrade(settings)
        return
    if settings.role == "worker":
        _worker(settings)
        return
    _check_registry(settings)
    if settings.api_token is None:  # one token for every worker, logged once
        import secrets

        token = secrets.token_urlsafe(32)
        os.environ["BACKPROP_API_TOKEN"] = token
        log.warning("BACKPROP_API_TOKEN is not set; the token for this run is %s", token)
    if settings.grpc_port:  # before the workers, which may share it (SO_REUSEPORT)
        from .rpc.ports import check_port_free

        try:
            check_port_free(settings.host, settings.grpc_port)
        except OSError as exc:
            sys.exit(f"backprop-serve: gRPC port {settings.grpc_port} is not free: {exc}")
    made = _metrics_dir(settings.workers)

    import uvicorn

    # uvicorn re-raises the signal that stopped it once it has shut down gracefully;
    # a SIGTERM handled here makes that clean stop exit 0, as orchestrators expect.
    signal.signal(signal.SIGTERM, _stopped)
    try:
        uvicorn.run(
            "service.asgi:app",
            host=settings.host,
            port=settings.port,
            workers=settings.workers,
            log_config=None,
            log_level=settings.log_level,
            access_log=False,
            timeout_graceful_shutdown=8,
            timeout_keep_alive=settings.keep_alive_seconds,
            http=http_protocol(),
            # The service never reads a client's address, so uvicorn's X-Forwarded-For
            # rewriting (a middleware on every request) buys nothing; nor does telling
            # every client the server's name.
            proxy_headers=False,
            server_header=False,
            ws="none",  # no WebSocket route: not even uvicorn's WebSocket protocol imported
        )
    finally:
        if made:
            shutil.rmtree(made, ignore_errors=True)
