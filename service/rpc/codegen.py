"""Generate the Python of ``grpc_predict_v2.proto`` (needs grpcio-tools: the test extra).

``python -m service.rpc.codegen`` rewrites the committed ``grpc_predict_v2_pb2*.py(i)``
next to the ``.proto``; a test regenerates them into a temporary folder and compares.
The ``.proto`` is named from the repository root, so the generated stub imports its
messages as ``service.rpc.grpc_predict_v2_pb2``.
"""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PROTO = "service/rpc/grpc_predict_v2.proto"
GENERATED = (
    "service/rpc/grpc_predict_v2_pb2.py",
    "service/rpc/grpc_predict_v2_pb2.pyi",
    "service/rpc/grpc_predict_v2_pb2_grpc.py",
)


def generate(out: Path) -> list[Path]:
    """Write the generated modules under ``out`` (as ``out/service/rpc/...``)."""
    from grpc_tools import protoc

    out.mkdir(parents=True, exist_ok=True)
    args = [
        "grpc_tools.protoc",
        f"--proto_path={ROOT}",
        f"--python_out={out}",
        f"--pyi_out={out}",
        f"--grpc_python_out={out}",
        str(ROOT / PROTO),
    ]
    if protoc.main(args) != 0:
        raise RuntimeError(f"protoc failed on {PROTO}")
    return [out / name for name in GENERATED]


if __name__ == "__main__":
    written = generate(ROOT)
    sys.stdout.write("".join(f"wrote {path.relative_to(ROOT)}\n" for path in written))
