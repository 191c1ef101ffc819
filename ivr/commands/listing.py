"""How the commands print listings: on a terminal, tables fit its width; piped or written to a file, every row is as
wide as its content (no column squeezed to 80 characters); `--json` prints what a script reads."""
from __future__ import annotations

import json
import sys
from typing import Any

import typer
from rich.console import Console

__all__ = ["console", "print_json"]

WIDE = 100_000  # the width of a table that goes to a pipe or a file: as wide as its content


def console(stderr: bool = False) -> Console:
    """A Console for tables and lines on stdout (or stderr)."""
    stream = sys.stderr if stderr else sys.stdout
    return Console(stderr=stderr) if stream.isatty() else Console(stderr=stderr, width=WIDE)


def print_json(data: Any) -> None:
    """`data` as one line of JSON (UTF-8 text as it is, times in ISO 8601)."""
    typer.echo(json.dumps(data, ensure_ascii=False, default=lambda v: v.isoformat()))
