"""`python -m conveyor`: the same as the `conveyor` command."""

from __future__ import annotations

from conveyor.cli import main

main()
