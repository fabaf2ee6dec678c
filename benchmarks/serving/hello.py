"""A bare ASGI app: reads the request body, answers a fixed JSON prediction (the HTTP ceiling).

``python -m benchmarks.serving.hello PORT WORKERS`` serves it on uvicorn as ``conveyor
serve`` starts uvicorn: through Conveyor's own ``run_workers`` (its listening socket and
uvicorn settings) for several workers, with the same uvicorn settings in one process for
one worker; access log off, as in ``conveyor serve``.
"""

from __future__ import annotations

import sys
from typing import Any

__all__ = ["app", "factory", "main"]

_BODY = b'{"predictions": ["no"]}'
_HEADERS = [(b"content-type", b"application/json"), (b"content-length", b"%d" % len(_BODY))]
HOST = "127.0.0.1"


async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    """Answer every HTTP request with 200 and one prediction, after reading its body."""
    if scope["type"] != "http":  # lifespan: nothing to set up
        message = await receive()
        if message["type"] == "lifespan.startup":
            await send({"type": "lifespan.startup.complete"})
            message = await receive()
        await send({"type": "lifespan.shutdown.complete"})
        return
    more = True
    while more:
        message = await receive()
        more = message.get("more_body", False)
    await send({"type": "http.response.start", "status": 200, "headers": _HEADERS})
    await send({"type": "http.response.body", "body": _BODY})


def factory() -> Any:
    """The app, for ``run_workers`` (it takes an app factory, as ``conveyor serve`` does)."""
    return app


def main() -> None:
    """Serve the app on ``PORT`` with ``WORKERS`` processes, as ``conveyor serve`` would."""
    import uvicorn

    from conveyor.serving.shutdown import run_workers

    port, workers = int(sys.argv[1]), int(sys.argv[2])
    if workers > 1:
        run_workers(
            "benchmarks.serving.hello:factory",
            host=HOST,
            port=port,
            workers=workers,
            graceful_timeout=0,
            access_log=False,
        )
        return
    config = uvicorn.Config(
        app, host=HOST, port=port, log_level="info", access_log=False, server_header=False
    )
    uvicorn.Server(config).run()


if __name__ == "__main__":
    main()
