"""Request body caps for the console (an ASGI middleware): a body over its path's limit is answered 413, told by
its Content-Length before any of it is read, or cut off as soon as a chunked body passes the limit."""
from __future__ import annotations

from collections.abc import Mapping

from fastapi import HTTPException
from fastapi.responses import JSONResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

__all__ = ["BodyLimit", "MAX_BODY", "MAX_SIGN_IN_BODY", "SIGN_IN_PATHS"]

MAX_BODY = 64 * 1024  # a ticket edit or a new user is a few hundred bytes
MAX_SIGN_IN_BODY = 4 * 1024
SIGN_IN_PATHS = ("/login", "/api/session")


def _too_large(limit: int) -> str:
    return f"request body too large (at most {limit} bytes here)"


class BodyLimit:
    """Caps request bodies at `limits[path]`, else `default` bytes."""

    def __init__(self, app: ASGIApp, default: int = MAX_BODY, limits: Mapping[str, int] | None = None) -> None:
        self.app, self.default = app, default
        self.limits = dict(limits if limits is not None else {p: MAX_SIGN_IN_BODY for p in SIGN_IN_PATHS})

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = self.limits.get(scope["path"], self.default)
        declared = dict(scope["headers"]).get(b"content-length")
        if declared is not None and (not declared.isdigit() or int(declared) > limit):
            await JSONResponse({"detail": _too_large(limit)}, status_code=413)(scope, receive, send)
            return
        seen = 0

        async def limited() -> Message:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > limit:  # a chunked body (no Content-Length) that keeps coming
                    raise HTTPException(413, _too_large(limit))
            return message

        await self.app(scope, limited, send)
