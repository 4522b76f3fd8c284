"""What reaches MLServer's REST app: bounded bodies, uploads that finish, JSON tensors only.

An ASGI middleware in front of the app (no MLServer import; plain ASGI), because the server under
it has no such limits: a body of any size was read into memory, an upload whose Content-Length
lied was held open forever, and a request using Triton's binary-tensor extension (which mnn-serve
does not announce) crashed FastAPI's error handler with a 500 whose log carried the whole body
(three 10 MB requests added 86 MB to the log). Here:

- a body larger than ``max_body`` bytes is refused with 413 (from its Content-Length, or once that
  many bytes arrived);
- an upload that stalls (no bytes for ``idle_s``) or takes longer than ``total_s`` gets 408;
- a request carrying ``Inference-Header-Content-Length`` (binary tensors) gets 400 saying to use
  JSON or gRPC.

Each answer is one JSON line ``{"error": ...}`` like MLServer's own, and nothing of the body is
logged.
"""

from __future__ import annotations

import asyncio
import json
import time


class RequestGuard:
    def __init__(self, app, max_body: int, idle_s: float = 30.0, total_s: float = 120.0):
        self.app = app
        self.max_body = max_body
        self.idle_s = idle_s
        self.total_s = total_s

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = {k.lower(): v for k, v in scope.get("headers", [])}
        if b"inference-header-content-length" in headers:
            await _answer(send, 400, "binary tensor data is not supported over HTTP by mnn-serve: send JSON, or "
                                     "use gRPC (grpc://HOST:PORT/MODEL), which carries tensors as raw bytes")
            return
        declared = headers.get(b"content-length", b"").decode(errors="replace")
        if declared.isdigit() and int(declared) > self.max_body:
            await _answer(send, 413, f"request body of {int(declared)} bytes exceeds the {self.max_body}-byte limit "
                                     "(--max-request-batch crops per request)")
            return
        body = await self._read(receive, send)
        if body is None:
            return
        replayed = False

        async def replay():
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()

        await self.app(scope, replay, send)

    async def _read(self, receive, send) -> bytes | None:
        """The whole body, or None after answering why not."""
        chunks, size, start, more = [], 0, time.monotonic(), True
        while more:
            left = min(self.idle_s, self.total_s - (time.monotonic() - start))
            try:
                message = await asyncio.wait_for(receive(), max(left, 0.001))
            except asyncio.TimeoutError:
                await _answer(send, 408, f"request body not received in time (stalled for {self.idle_s:g} s or "
                                         f"longer than {self.total_s:g} s in all)")
                return None
            if message["type"] == "http.disconnect":
                return None
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.max_body:
                await _answer(send, 413, f"request body exceeds the {self.max_body}-byte limit "
                                         "(--max-request-batch crops per request)")
                return None
            chunks.append(chunk)
            more = message.get("more_body", False)
        return b"".join(chunks)


async def _answer(send, status: int, message: str) -> None:
    body = json.dumps({"error": message}).encode()
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()),
                            (b"connection", b"close")]})
    await send({"type": "http.response.body", "body": body})
