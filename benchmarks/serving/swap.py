"""p99 during hot swaps vs steady state, on one ``conveyor serve`` worker.

The steady run and the swap run load the same server for the same time. During the swap
run a thread moves the ``champion`` alias between two registered versions and calls
``POST /admin/reload`` every second, so the server loads, warms and swaps a version about
once a second while it answers. The alias is put back where it was at the end.
"""

from __future__ import annotations

import secrets
import threading
import time
from dataclasses import dataclass, field
from typing import Any

import httpx

from benchmarks.serving import targets
from benchmarks.serving.demo import DemoModel, mlflow_body
from benchmarks.serving.load import LoadGenerator
from benchmarks.serving.targets import TargetError

__all__ = ["SWAP_CONNECTIONS", "hot_swap"]

SWAP_CONNECTIONS = 16
SWAP_EVERY_S = 1.0
MIN_SECONDS = 5.0  # even in a quick run, room for a few load-warm-swap cycles


@dataclass
class _Swapper:
    """Moves ``champion`` back and forth and asks the server to reload, every second."""

    url: str
    token: str
    model: DemoModel
    stop: threading.Event = field(default_factory=threading.Event)
    reloads: list[dict[str, Any]] = field(default_factory=list)

    def run(self) -> None:
        registry = self.model.registry()
        others = [v for v in self.model.versions if v != self.model.champion]
        pair = (others[-1], self.model.champion)
        auth = {"Authorization": f"Bearer {self.token}"}
        turn = 0
        with httpx.Client(base_url=self.url, timeout=30.0) as client:
            while not self.stop.wait(SWAP_EVERY_S):
                target = pair[turn % 2]
                turn += 1
                registry.client.set_registered_model_alias(self.model.name, "champion", target)
                started = time.perf_counter()
                status: int | str
                try:
                    answer = client.post("/admin/reload", headers=auth)
                    swapped = answer.status_code == 200 and bool(answer.json().get("swapped"))
                    status = answer.status_code
                except httpx.HTTPError as exc:
                    swapped, status = False, type(exc).__name__
                self.reloads.append(
                    {
                        "to": target,
                        "status": status,
                        "swapped": swapped,
                        "seconds": time.perf_counter() - started,
                        "ended": time.perf_counter(),
                    }
                )


def hot_swap(
    model: DemoModel,
    load: LoadGenerator,
    *,
    seconds: float,
    logs: Any,
    options: tuple[str, ...] = (),
) -> dict[str, Any]:
    """Steady run, then swap run, on one server (1 worker, admin token set).

    Returns:
        ``steady`` and ``swap`` load results, the reloads made, or a ``status`` and
        ``reason`` when it could not run.
    """
    if len(model.versions) < 2:
        return {"status": "not available", "reason": "the registry holds one version"}
    token = secrets.token_urlsafe(24)
    env = {"CONVEYOR_ADMIN_TOKEN": token}
    body = mlflow_body(model.rows.head(1))
    registry = model.registry()
    seconds = max(seconds, MIN_SECONDS)
    try:
        with targets.conveyor_serve(
            model.config, workers=1, options=options, logs=logs, env=env
        ) as server:
            url = f"{server.url}/invocations"
            steady = load.run(
                url, body, connections=SWAP_CONNECTIONS, seconds=seconds, count_versions=True
            )
            swapper = _Swapper(server.url, token, model)
            thread = threading.Thread(target=swapper.run, daemon=True)
            thread.start()
            try:
                load_started = time.perf_counter()
                swap = load.run(
                    url, body, connections=SWAP_CONNECTIONS, seconds=seconds, count_versions=True
                )
            finally:
                load_ended = time.perf_counter()
                swapper.stop.set()
                thread.join(timeout=60)
                registry.client.set_registered_model_alias(model.name, "champion", model.champion)
    except (TargetError, RuntimeError, OSError) as exc:
        return {"status": "failed", "reason": str(exc)[-600:]}
    return {
        "status": "ok",
        "connections": SWAP_CONNECTIONS,
        "options": list(options),
        "steady": steady.to_dict(),
        "swap": swap.to_dict(),
        "reloads": swapper.reloads,
        "seconds": seconds,
        "swaps": sum(r["swapped"] for r in swapper.reloads),
        "swaps_during_load": sum(
            r["swapped"] and load_started <= r["ended"] <= load_ended for r in swapper.reloads
        ),
        "failed_reloads": sum(r["status"] != 200 for r in swapper.reloads),
    }
