"""Every method the server does not offer: UNIMPLEMENTED, as grpcio answers it, but
like any other call: with the call's ``x-request-id`` in the trailing metadata, an
access line and the request counter.

Triton's other methods (``ModelStreamInfer``, statistics, repository, shared memory)
land here, as do unknown ones. The metrics' ``route`` is ``unmatched``, as for an
HTTP path no route matches, so a client's method names cannot grow the label set;
the access line shows the name called.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from typing import Any

import grpc

from .calls import REQUEST_ID, log_access, observe, request_id

ROUTE = "unmatched"
_CODE = grpc.StatusCode.UNIMPLEMENTED


class Unimplemented(grpc.GenericRpcHandler):
    """The last handler the server asks: it takes every method the others did not."""

    def __init__(self, offered: str) -> None:
        self.offered = offered  # what the message lists instead

    def service(self, handler_call_details: Any) -> Any:
        method = str(handler_call_details.method)

        async def refuse(requests: AsyncIterator[bytes], context: Any) -> None:
            # A stream handler: it answers unary and streaming calls alike, unread.
            start = time.perf_counter()
            rid = request_id(context)
            try:
                await context.abort(
                    _CODE,
                    f"{method} is not a method of this server; it offers {self.offered}",
                    ((REQUEST_ID, rid),),
                )
            finally:
                elapsed = time.perf_counter() - start
                observe(ROUTE, _CODE, elapsed)
                log_access(method, ROUTE, _CODE, elapsed, rid)

        return grpc.stream_stream_rpc_method_handler(refuse)
