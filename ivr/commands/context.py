"""Settings shared by the subcommands: set once by the top-level options, read by each command."""
from __future__ import annotations

from pathlib import Path
from typing import Any

import typer

from ivr.config import ConfigError, Settings, load_settings
from ivr.logs import setup_logging

__all__ = ["configure", "settings", "settings_of", "reload", "fail"]

_config_file: Path | None = None
_overrides: dict[str, Any] = {}
_settings: Settings | None = None


def configure(config_file: Path | None, overrides: dict[str, Any], verbose: int) -> None:
    global _config_file, _overrides, _settings
    _config_file, _overrides, _settings = config_file, overrides, None
    setup_logging(["", "INFO", "DEBUG"][min(verbose, 2)] or settings().log_level)


def settings() -> Settings:
    global _settings
    if _settings is None:
        _settings = load_settings(_config_file, _overrides)
    return _settings


def settings_of(ctx: typer.Context) -> Settings:
    """The Settings given as the root context's object (tests, embedding), else those of the top-level options; a
    bad configuration is one line and exit status 2."""
    obj = ctx.find_root().obj
    if isinstance(obj, Settings):
        return obj
    try:
        return settings()
    except ConfigError as exc:
        raise fail(f"configuration error: {exc}", 2) from None


def reload() -> Settings:
    """Read the configuration file and environment again (e.g. on SIGHUP); a bad one raises ConfigError."""
    global _settings
    _settings = load_settings(_config_file, _overrides)
    return _settings


def fail(message: str, code: int = 1) -> typer.Exit:
    """Print one clear error line and return the Exit to raise."""
    typer.secho(f"ivr: {message}", fg="red", err=True)
    return typer.Exit(code)


__all__ += ["ConfigError"]
