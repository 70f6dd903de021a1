"""The errors a user can fix by changing what they typed or gave us (exit code 2, one line, no traceback).

Every command-line entry point runs under `runtime.cli.run`, which prints `error: <message>` for these
and exits 2; anything else that goes wrong while running exits 1.
"""

from __future__ import annotations

from pathlib import Path


class UserError(ValueError):
    """Bad input: a config key, a data file, a checkpoint or an adapter dir (the message names it)."""


class DataError(UserError):
    """Bad input data; str() is `<file>: row N: <message>` (row left out when unknown)."""

    def __init__(self, message: str, *, file: str | Path | None = None, row: int | None = None):
        self.file = str(file) if file is not None else None
        self.row = row
        self.message = message
        parts = [p for p in (self.file, f"row {row}" if row is not None else None, message) if p]
        super().__init__(": ".join(parts))
