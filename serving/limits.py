"""A cap on request bodies, before anything parses them."""

from __future__ import annotations

from starlette.exceptions import HTTPException
from starlette.responses import JSONResponse


class BodyLimitMiddleware:
    """413 for a body over max_bytes: at once when Content-Length says so, else as soon as
    the bytes received pass it (chunked uploads)."""

    def __init__(self, app, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    def _message(self) -> str:
        return f"request body over {self.max_bytes} bytes (SERVING__MAX_BODY_BYTES)"

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        length = dict(scope["headers"]).get(b"content-length")
        if length is not None and (not length.isdigit() or int(length) > self.max_bytes):
            detail = self._message() if length.isdigit() else "malformed Content-Length"
            return await JSONResponse({"detail": detail}, 413 if length.isdigit() else 400)(scope, receive, send)
        seen = 0

        async def counted():
            nonlocal seen
            message = await receive()
            seen += len(message.get("body", b""))
            if seen > self.max_bytes:
                raise HTTPException(413, self._message())
            return message

        await self.app(scope, counted, send)
