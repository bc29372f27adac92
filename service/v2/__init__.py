"""The Open Inference Protocol (V2: KServe, Triton, MLServer) over the served models.

``tensors`` reads an inference request (JSON and the binary tensor data extension),
``response`` writes the answer, ``infer`` serves ``POST .../infer`` straight from
ASGI like the native predict path, and ``metadata`` describes server and model.
The GET endpoints are the FastAPI router in ``service.routes.v2``.
"""
