"""The committed gRPC code is what grpcio-tools makes of the committed ``.proto``, and
that ``.proto`` is the protocol's: every message, field and method as tritonclient's copy.
"""

from __future__ import annotations

from pathlib import Path

from google.protobuf import descriptor_pb2
from grpc_tools import protoc
from tritonclient.grpc import service_pb2 as triton_pb

from service.rpc import codegen

ROOT = Path(__file__).resolve().parents[2]
METHODS = (
    "ServerLive",
    "ServerReady",
    "ModelReady",
    "ServerMetadata",
    "ModelMetadata",
    "ModelInfer",
)


def test_generated_code_matches_the_proto(tmp_path: Path) -> None:
    for made in codegen.generate(tmp_path):
        committed = ROOT / made.relative_to(tmp_path)
        assert made.read_text() == committed.read_text(), (
            f"{committed.relative_to(ROOT)} is stale: run `python -m service.rpc.codegen`"
        )


def _ours(tmp_path: Path) -> descriptor_pb2.FileDescriptorProto:
    out = tmp_path / "ours.pb"
    assert (
        protoc.main(
            ["protoc", f"--proto_path={ROOT}", f"--descriptor_set_out={out}", codegen.PROTO]
        )
        == 0
    )
    files = descriptor_pb2.FileDescriptorSet.FromString(out.read_bytes())
    return files.file[0]


def _fields(message: descriptor_pb2.DescriptorProto, prefix: str) -> dict[str, tuple]:
    """Every field of a message and of its nested messages, by full name."""
    found = {
        f"{prefix}.{f.name}": (f.number, f.type, f.label, f.type_name.lstrip("."))
        for f in message.field
    }
    for nested in message.nested_type:
        found |= _fields(nested, f"{prefix}.{nested.name}")
    return found


def test_the_proto_is_the_protocols(tmp_path: Path) -> None:
    ours = _ours(tmp_path)
    theirs = descriptor_pb2.FileDescriptorProto()
    triton_pb.DESCRIPTOR.CopyToProto(theirs)
    assert ours.package == theirs.package == "inference"
    their_messages = {m.name: m for m in theirs.message_type}
    for message in ours.message_type:
        assert message.name in their_messages, message.name
        prefix = f"inference.{message.name}"
        assert _fields(message, prefix) == _fields(their_messages[message.name], prefix)
    (service,) = ours.service
    (their_service,) = [s for s in theirs.service if s.name == "GRPCInferenceService"]
    assert service.name == "GRPCInferenceService"
    their_methods = {m.name: (m.input_type, m.output_type) for m in their_service.method}
    assert [m.name for m in service.method] == list(METHODS)
    for method in service.method:
        assert (method.input_type, method.output_type) == their_methods[method.name]
