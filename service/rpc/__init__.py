"""The Open Inference Protocol (V2) over gRPC: ``inference.GRPCInferenceService``.

``grpc_predict_v2.proto`` is the protocol (its generated Python beside it, made by
``codegen``); ``tensors`` turns a ``ModelInferRequest`` into the checked request of
the REST V2 path (``service.v2.tensors``: same checks, same wording) and writes the
answer; ``servicer`` answers the six methods; ``health`` is ``grpc.health.v1.Health``;
``unimplemented`` refuses every other method; ``server`` starts and stops the
``grpc.aio`` server from the app's lifespan.

The generated messages register ``inference.*`` in protobuf's default pool, as
every copy of the protocol does (tritonclient's among them), and two copies cannot
share one process. So the app imports this package only when it serves gRPC, and
the tests (which use tritonclient) never import the generated modules.
"""

import os

# The service starts training jobs as subprocesses (fork, then exec). grpcio's fork
# handlers have nothing to do for a child that execs at once, and say so on stderr
# at every job: they are turned off unless the environment asks for them.
os.environ.setdefault("GRPC_ENABLE_FORK_SUPPORT", "false")
