"""The draining server: the first SIGTERM fails readiness and delays the exit."""

from __future__ import annotations

import asyncio
import signal
import time

import uvicorn
from fastapi import FastAPI

from conveyor.serving.settings import ServingSettings
from conveyor.serving.shutdown import DrainingServer
from conveyor.serving.state import ServingState


def server(drain_seconds: float) -> tuple[DrainingServer, ServingState]:
    settings = ServingSettings(model_uri="models:/m@champion", tracking_uri="sqlite:///x.db")
    state = ServingState(settings=settings, ready=True)
    config = uvicorn.Config(FastAPI())
    return DrainingServer(config, state=state, drain_seconds=drain_seconds), state


def test_first_sigterm_drains_instead_of_exiting() -> None:
    draining, state = server(drain_seconds=30.0)
    draining.handle_exit(signal.SIGTERM, None)
    assert state.draining and not state.is_ready()
    assert not draining.should_exit
    assert asyncio.run(draining.on_tick(1)) is False  # still serving during the drain


def test_the_drain_ends_in_an_exit_that_reraises_no_signal() -> None:
    draining, _ = server(drain_seconds=0.05)
    draining.handle_exit(signal.SIGTERM, None)
    time.sleep(0.06)
    assert asyncio.run(draining.on_tick(1)) is True
    assert draining.should_exit
    assert draining._captured_signals == []  # uvicorn would re-raise it: exit code 143


def test_second_sigterm_or_sigint_stops_at_once() -> None:
    draining, _ = server(drain_seconds=30.0)
    draining.handle_exit(signal.SIGTERM, None)
    draining.handle_exit(signal.SIGTERM, None)
    assert draining.should_exit
    interrupted, state = server(drain_seconds=30.0)
    interrupted.handle_exit(signal.SIGINT, None)
    assert interrupted.should_exit and not state.draining
