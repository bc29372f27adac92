"""Fixtures of the many-machine tests: real PostgreSQL and real S3 servers on loopback."""

from __future__ import annotations

from .postgres import postgres_server, postgres_url
from .s3 import s3_server

__all__ = ["postgres_server", "postgres_url", "s3_server"]
