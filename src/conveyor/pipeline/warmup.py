"""Import the heavy libraries of later steps in the background while early steps work.

Great Expectations, MLflow, skops (which imports all of scikit-learn) and matplotlib cost
about 15 s of imports in a fresh process. Training and data reading spend most of their
time in C code that releases the GIL, so importing in a thread beside them is nearly free.
Only started when a step actually runs: a fully cached run imports none of them.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

__all__ = ["start_warm_up"]

log = logging.getLogger(__name__)


def _importers() -> list[Callable[[], None]]:
    """In the order the steps need them."""
    from conveyor.data import validation, versioning
    from conveyor.registry import store
    from conveyor.training import plots

    return [validation.warm_up, versioning.warm_up, plots.warm_up, store.warm_up]


def _run() -> None:
    for importer in _importers():
        try:
            importer()
        except Exception:  # the step that needs the library reports the real error
            log.debug("warm-up of %s failed", importer.__module__, exc_info=True)


def start_warm_up() -> threading.Thread:
    """Start the background imports; returns the (daemon) thread."""
    thread = threading.Thread(target=_run, name="conveyor-warm-up", daemon=True)
    thread.start()
    return thread
