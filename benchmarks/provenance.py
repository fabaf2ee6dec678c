"""Where and when a benchmark ran: commit, date, machine and its load at the start."""

from __future__ import annotations

import os
import platform
import subprocess
from datetime import datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def run_meta() -> dict[str, str]:
    """The provenance every results file records."""
    commit = subprocess.run(
        ["git", "rev-parse", "HEAD"], cwd=ROOT, capture_output=True, text=True, check=False
    ).stdout.strip()
    return {
        "date": datetime.now().astimezone().isoformat(timespec="seconds"),
        "commit": commit or "unknown",
        "machine": f"{os.cpu_count()} cores, Python {platform.python_version()}, "
        f"{platform.platform()}",
        "load_average_start": f"{os.getloadavg()[0]:.1f}",
    }
