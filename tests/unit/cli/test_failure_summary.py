"""The failed-run summary says what the run left in the registry."""

from __future__ import annotations

from conveyor.cli.report import _registry_state


def test_a_run_that_failed_before_registering_left_nothing() -> None:
    record = {"steps": {"train": {"status": "failed"}}}
    assert _registry_state(record) == "nothing registered, no alias moved"


def test_a_run_that_failed_after_registering_names_the_version() -> None:
    record = {
        "steps": {
            "register": {"status": "succeeded", "summary": {"version": "4"}},
            "promote": {"status": "failed"},
        }
    }
    assert _registry_state(record) == "version 4 registered; the promote step did not finish"
