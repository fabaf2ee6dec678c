"""A bare ASGI app: reads the request body, answers a fixed JSON prediction (the HTTP ceiling)."""

from __future__ import annotations

from typing import Any

__all__ = ["app"]

_BODY = b'{"predictions": ["no"]}'
_HEADERS = [(b"content-type", b"application/json"), (b"content-length", b"%d" % len(_BODY))]


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


def main() -> None:
    """``python -m benchmarks.serving.hello PORT WORKERS``: uvicorn workers on a socket created
    with ``IPPROTO_TCP``, so asyncio sets TCP_NODELAY on every connection.

    ``uvicorn --workers N`` binds ``socket.socket(family=...)`` (protocol 0); connections
    accepted from it keep protocol 0 and asyncio then skips TCP_NODELAY, so every keep-alive
    response waits for a delayed ACK (~40 ms). This variant shows the ceiling without that.
    """
    import socket
    import sys

    import uvicorn
    from uvicorn.supervisors import Multiprocess

    port, workers = int(sys.argv[1]), int(sys.argv[2])
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", port))
    sock.set_inheritable(True)
    config = uvicorn.Config("benchmarks.serving.hello:app", workers=workers, log_level="info")
    Multiprocess(config, sockets=[sock]).run()


if __name__ == "__main__":
    main()
