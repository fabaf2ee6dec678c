"""Graceful shutdown: on SIGTERM fail readiness at once, keep serving for a drain delay, then stop.

Why a :class:`uvicorn.Server` subclass and not the app's lifespan: uvicorn (0.54) installs
its own SIGINT/SIGTERM handler (``Server.handle_exit``), which sets ``should_exit``; the
main loop then closes the listening socket and only after that runs the lifespan
shutdown. By then new connections are already refused, so the lifespan cannot hold the
door open while a Kubernetes endpoint update propagates. Overriding ``handle_exit``
catches the signal first:

1. The first SIGTERM sets ``ServingState.draining`` (``/readyz`` answers 503 and
   ``/v2/health/ready`` 400 at once) and a deadline ``drain_seconds`` ahead. It does not
   set ``should_exit``, and it is not recorded as a captured signal, so uvicorn does not
   re-raise it after shutdown and the process exits 0. The handler only sets attributes,
   which is safe inside a signal handler.
2. Until the deadline the server runs as before: new connections and requests are served.
3. ``on_tick`` (every 0.1 s in uvicorn's main loop) sees the deadline pass and returns
   True: uvicorn's own graceful shutdown follows (stop listening, let in-flight requests
   finish for up to ``timeout_graceful_shutdown`` seconds, run the lifespan shutdown).

SIGINT (Ctrl-C) and a second SIGTERM keep uvicorn's behaviour: shut down now (a second
Ctrl-C forces it). With ``--workers`` > 1 uvicorn's supervisor runs stock servers, so the
drain delay applies to the single-process server (one process per pod on Kubernetes).
"""

from __future__ import annotations

import logging
import signal
import sys
import time
from typing import TYPE_CHECKING

import uvicorn

if TYPE_CHECKING:
    from types import FrameType

    from fastapi import FastAPI

    from conveyor.serving.state import ServingState

__all__ = ["DrainingServer", "run_server"]

logger = logging.getLogger(__name__)

STARTUP_FAILURE = 3  # uvicorn's exit code when the app or the socket fails at startup


class DrainingServer(uvicorn.Server):
    """A uvicorn server that drains for ``drain_seconds`` after SIGTERM before stopping.

    Args:
        config: the uvicorn config.
        state: the serving state whose ``draining`` flag the readiness probes read.
        drain_seconds: how long to keep serving after SIGTERM before shutting down.
    """

    def __init__(self, config: uvicorn.Config, *, state: ServingState, drain_seconds: float):
        super().__init__(config)
        self.state = state
        self.drain_seconds = drain_seconds
        self.drain_deadline: float | None = None

    def handle_exit(self, sig: int, frame: FrameType | None) -> None:
        """Start the drain on the first SIGTERM; anything else shuts down as uvicorn does."""
        if sig == signal.SIGTERM and self.drain_deadline is None and not self.should_exit:
            self.state.draining = True
            self.drain_deadline = time.monotonic() + self.drain_seconds
            return
        super().handle_exit(sig, frame)

    async def on_tick(self, counter: int) -> bool:
        """uvicorn's tick, plus: stop once the drain delay has passed."""
        if self.drain_deadline is not None and not self.should_exit:
            if counter % 10 == 0 or time.monotonic() >= self.drain_deadline:
                logger.info(
                    "draining: not ready, still serving (%.1f s left)",
                    max(0.0, self.drain_deadline - time.monotonic()),
                )
            if time.monotonic() >= self.drain_deadline:
                self.should_exit = True
        return await super().on_tick(counter)


def run_server(
    app: FastAPI,
    *,
    host: str,
    port: int,
    drain_seconds: float,
    graceful_timeout: int,
    access_log: bool = False,
) -> None:
    """Serve ``app`` until SIGTERM (drained) or SIGINT.

    Args:
        app: an app built by ``create_app`` (its ``state.serving`` is drained).
        host: interface to listen on.
        port: port to listen on.
        drain_seconds: after SIGTERM, keep serving this long with readiness failing.
        graceful_timeout: then give in-flight requests this long to finish.
        access_log: log every request (off by default: ``/metrics`` counts them, and a
            log line per request costs ~5% of the ONNX path's throughput).

    Raises:
        SystemExit: (3) the server could not start (port in use, startup failure).
    """
    config = uvicorn.Config(
        app,
        host=host,
        port=port,
        log_level="info",
        access_log=access_log,
        timeout_graceful_shutdown=graceful_timeout,
        server_header=False,  # no library name in answers
    )
    server = DrainingServer(config, state=app.state.serving, drain_seconds=drain_seconds)
    server.run()
    if not server.started:
        sys.exit(STARTUP_FAILURE)


def run_workers(
    factory: str,
    *,
    host: str,
    port: int,
    workers: int,
    graceful_timeout: int,
    access_log: bool = False,
) -> None:
    """Serve an app factory in ``workers`` processes sharing one listening socket.

    uvicorn's own multi-worker start binds ``socket.socket(family)`` (protocol 0); the
    connections accepted from it keep protocol 0, so asyncio does not set TCP_NODELAY on
    them and every keep-alive response after the first waits for the client's delayed ACK
    (~40 ms: 2 workers answered 23 requests/s on one connection). The socket is made here
    with ``IPPROTO_TCP`` instead.

    Args:
        factory: ``module:function`` returning the app (settings come from the environment).
        host: interface to listen on.
        port: port to listen on.
        workers: worker processes.
        graceful_timeout: seconds in-flight requests get at shutdown.
        access_log: log every request.

    Raises:
        SystemExit: (3) the port cannot be bound.
    """
    import socket

    from uvicorn.supervisors import Multiprocess

    config = uvicorn.Config(
        factory,
        factory=True,
        host=host,
        port=port,
        workers=workers,
        log_level="info",
        access_log=access_log,
        timeout_graceful_shutdown=graceful_timeout,
        server_header=False,
    )
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as exc:
        logger.error("cannot listen on %s:%s: %s", host, port, exc)
        sys.exit(STARTUP_FAILURE)
    sock.set_inheritable(True)
    Multiprocess(config, sockets=[sock]).run()
