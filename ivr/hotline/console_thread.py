"""The operator console beside the SIP endpoint: on a thread of its own with its own event loop."""
from __future__ import annotations

import asyncio
import contextlib
import errno
import socket
import threading

import uvicorn
from starlette.types import ASGIApp

from ivr.config import ConfigError, Settings

__all__ = ["ConsoleThread", "console_socket"]


def console_socket(settings: Settings) -> socket.socket:
    """The console's listening socket, bound before the server starts: a port in use is a ConfigError."""
    host, port = settings.console_host, settings.console_port
    sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        key = "console_port" if exc.errno in (errno.EADDRINUSE, errno.EACCES) else "console_host"
        raise ConfigError(f"{key}: cannot listen on {host}:{port} ({exc.strerror or exc})") from None
    return sock


class ConsoleThread:
    """The operator console on a thread of its own with its own event loop, so that no console request (a flood of
    sign-ins, a big export) ever runs on the loop that paces every call's RTP; its handlers share only thread-safe
    state with the calls (the stores, the live view, the metrics)."""

    def __init__(self, app: ASGIApp, sock: socket.socket) -> None:
        self.server = uvicorn.Server(uvicorn.Config(app, log_level="warning", timeout_graceful_shutdown=5))
        self.server.capture_signals = contextlib.nullcontext  # type: ignore[method-assign, assignment]  # run_server owns Ctrl-C
        self.thread = threading.Thread(target=self.server.run, kwargs={"sockets": [sock]}, name="console",
                                       daemon=True)
        self.thread.start()

    async def stop(self) -> None:
        self.server.should_exit = True
        await asyncio.to_thread(self.thread.join)
