"""Where the gRPC server listens, and whether it can (standard library only: the command
line calls this before it sets up the workers' metrics, so it must import nothing
that imports prometheus-client).
"""

from __future__ import annotations

import socket


def address(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def check_port_free(host: str, port: int) -> None:
    """Raise OSError when ``port`` is already bound (with or without port reuse)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as sock:
        sock.bind((host, port))
