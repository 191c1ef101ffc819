"""`ivr serve` runs the console on a thread of its own with its own event loop: no request runs on the loop that
paces the calls' RTP, and the console stops with the server."""
from __future__ import annotations

import asyncio
import socket
import threading
import urllib.request

import pytest

from ivr.hotline.console_thread import ConsoleThread


def test_console_requests_never_run_on_the_media_loop() -> None:
    seen: list[tuple[int, asyncio.AbstractEventLoop]] = []

    async def app(scope, receive, send):  # type: ignore[no-untyped-def]  # a bare ASGI app
        if scope["type"] != "http":
            return
        seen.append((threading.get_ident(), asyncio.get_running_loop()))
        await send({"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"text/plain")]})
        await send({"type": "http.response.body", "body": b"ok"})

    async def main() -> None:
        sock = socket.create_server(("127.0.0.1", 0))
        port = sock.getsockname()[1]
        console = ConsoleThread(app, sock)  # type: ignore[arg-type]
        body = await asyncio.to_thread(lambda: urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=30).read())
        assert body == b"ok"
        [(thread, loop)] = seen
        assert thread != threading.get_ident() and loop is not asyncio.get_running_loop()
        await console.stop()
        assert not console.thread.is_alive()
        with pytest.raises(OSError):
            urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=5)

    asyncio.run(main())
