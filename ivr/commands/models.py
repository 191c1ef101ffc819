"""`ivr models`: list, download, install, verify the Vosk models and show which one is used."""
from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer
from rich.progress import (
    BarColumn, DownloadColumn, Progress, TextColumn, TimeRemainingColumn, TransferSpeedColumn,
)
from rich.table import Table

from asr.download import ProgressCallback, download_model, install_archive
from asr.errors import ModelError
from asr.whisper_files import WHISPER_CATALOGUE, download_whisper, install_whisper
from asr.model_files import (
    CATALOGUE, DEFAULT_MODEL, InstalledModel, catalogue_entry, installed_models, resolve_model, verify_model,
)
from ivr.commands import context
from ivr.commands.listing import console, print_json
from ivr.config import Settings

app = typer.Typer(help="Speech models (Vosk, and CTranslate2 Whisper for the second pass): list, download, install "
                       "from a zip or folder, verify, show the one in use.",
                  no_args_is_help=True)

_PHASES = {"download": "downloading", "verify": "checking SHA-256", "unpack": "unpacking"}


def _dirs(settings: Settings) -> tuple[Path, Path]:
    assert settings.models_dir is not None
    return settings.models_dir, settings.data_dir / "downloads"


def _fail(exc: Exception) -> typer.Exit:
    return context.fail(str(exc))


class _Bar:
    """A rich progress bar with one task per phase, fed by the installer's progress callback."""

    def __init__(self, progress: Progress) -> None:
        self.progress = progress
        self.tasks: dict[str, object] = {}

    def __call__(self, phase: str, done: int, total: int | None) -> None:
        task = self.tasks.get(phase)
        if task is None:
            task = self.tasks[phase] = self.progress.add_task(_PHASES.get(phase, phase), total=total)
        self.progress.update(task, completed=done, total=total)  # type: ignore[arg-type]


def _progress() -> Progress:
    return Progress(TextColumn("{task.description:<18}"), BarColumn(), DownloadColumn(), TransferSpeedColumn(),
                    TimeRemainingColumn(), console=console(stderr=True), transient=False)


def _state(model: InstalledModel | None) -> str:
    return "not installed" if model is None else ("installed" if model.valid else "BROKEN")


def _size(n: int) -> str:
    return f"{n / 2**30:.1f} GiB" if n >= 2**30 else f"{n / 2**20:.0f} MiB"


@app.command("list")
def list_models(ctx: typer.Context,
                as_json: bool = typer.Option(False, "--json", help="Print JSON: one object per model.")) -> None:
    """The catalogue and what is installed in the models directory."""
    settings = context.settings_of(ctx)
    models_dir, _ = _dirs(settings)
    installed = {m.name: m for m in installed_models(models_dir)}
    if as_json:
        print_json([{"name": name, "zip_bytes": spec.archive_bytes, "description": spec.description,
                     "default": name == DEFAULT_MODEL, "state": _state(installed.get(name))}
                    for name, spec in CATALOGUE.items()]
                   + [{"name": name, "zip_bytes": None, "description": spec.description, "default": False,
                       "state": _state(installed.get(name))} for name, spec in WHISPER_CATALOGUE.items()]
                   + [{"name": name, "zip_bytes": None, "description": "not in the catalogue", "default": False,
                       "state": _state(m)} for name, m in installed.items()
                      if name not in CATALOGUE and name not in WHISPER_CATALOGUE])
        return
    table = Table(title=f"models in {models_dir}", title_justify="left")
    for col in ("name", "zip", "state", "about"):
        table.add_column(col)
    for name, spec in CATALOGUE.items():
        about = spec.description + (" (default)" if name == DEFAULT_MODEL else "")
        table.add_row(name, _size(spec.archive_bytes), _state(installed.pop(name, None)), about)
    for name, wspec in WHISPER_CATALOGUE.items():
        table.add_row(name, _size(wspec.total_bytes), _state(installed.pop(name, None)), wspec.description)
    for name, m in installed.items():
        table.add_row(name, "-", _state(m), "not in the catalogue")
    console().print(table)


@app.command()
def download(
    ctx: typer.Context,
    name: str = typer.Argument(DEFAULT_MODEL, help="catalogue name"),
    force: bool = typer.Option(False, "--force", help="replace an installed model of that name"),
    url: Optional[str] = typer.Option(None, "--url", help="download from this mirror instead"),
    sha256: Optional[str] = typer.Option(None, "--sha256", help="expected SHA-256, overriding the catalogue's"),
) -> None:
    """Download a catalogue model (resumable, SHA-256 checked) and install it."""
    settings = context.settings_of(ctx)
    models_dir, cache_dir = _dirs(settings)
    try:
        if name in WHISPER_CATALOGUE:
            if sha256:
                raise ModelError(f"{name}: its files' SHA-256 are pinned in the catalogue; --sha256 is for zips")
            with _progress() as progress:
                path = download_whisper(WHISPER_CATALOGUE[name], models_dir, cache_dir, base_url=url, force=force,
                                        progress=_Bar(progress))
            console().print(f"installed {name} at {path}", highlight=False, soft_wrap=True)
            return
        spec = catalogue_entry(name)
        with _progress() as progress:
            bar: ProgressCallback = _Bar(progress)
            path = download_model(spec, models_dir, cache_dir, url=url, sha256=sha256, force=force,
                                  progress=bar)
    except ModelError as exc:
        raise _fail(exc) from None
    console().print(f"installed {name} at {path}", highlight=False, soft_wrap=True)


def _is_whisper(source: Path) -> bool:
    """A folder or zip holding a CTranslate2 Whisper model (model.bin beside tokenizer.json), not a Vosk one."""
    import zipfile

    if source.is_dir():
        names = [p.name for p in source.rglob("*")]
    elif zipfile.is_zipfile(source):
        with zipfile.ZipFile(source) as zf:
            names = [n.rsplit("/", 1)[-1] for n in zf.namelist()]
    else:
        return False
    return "model.bin" in names and "tokenizer.json" in names


@app.command()
def install(
    ctx: typer.Context,
    zip_path: Path = typer.Argument(..., metavar="ZIP", help="a Vosk model zip, or a CTranslate2 Whisper model's "
                                    "zip or folder, copied to this machine"),
    name: Optional[str] = typer.Option(None, "--name", help="install under this name"),
    sha256: Optional[str] = typer.Option(None, "--sha256", help="refuse the zip unless it has this SHA-256"),
    force: bool = typer.Option(False, "--force", help="replace an installed model of that name"),
) -> None:
    """Install a model from a local zip, or a Whisper model from a zip or folder (offline sites)."""
    settings = context.settings_of(ctx)
    models_dir, _ = _dirs(settings)
    expected = sha256
    if expected is None and name is None and zip_path.name.removesuffix(".zip") in CATALOGUE:
        expected = CATALOGUE[zip_path.name.removesuffix(".zip")].archive_sha256
    try:
        with _progress() as progress:
            if _is_whisper(zip_path):
                path = install_whisper(zip_path, models_dir, name, force=force, progress=_Bar(progress))
            else:
                path = install_archive(zip_path, models_dir, name, expected_sha256=expected, force=force,
                                       progress=_Bar(progress))
    except ModelError as exc:
        raise _fail(exc) from None
    console().print(f"installed {path.name} at {path}", highlight=False, soft_wrap=True)


@app.command()
def verify(
    ctx: typer.Context,
    path: Optional[Path] = typer.Argument(None, help="model directory (default: the one in use)"),
    deep: bool = typer.Option(False, "--deep", help="also compare every file's SHA-256 with the manifest"),
) -> None:
    """Check a model directory has every file Vosk (or faster-whisper) needs and matches its install manifest."""
    settings = context.settings_of(ctx)
    models_dir, _ = _dirs(settings)
    try:
        target = path if path is not None else resolve_model(models_dir, config=settings.vosk_model).path
        report = verify_model(target, deep=deep)
    except ModelError as exc:
        raise _fail(exc) from None
    if not report.ok:
        for problem in report.problems:
            console(stderr=True).print(f"[red]problem:[/red] {problem}", highlight=False, soft_wrap=True)
        raise typer.Exit(1)
    extra = f", {report.files_checked} files match the manifest" if report.has_manifest else ", no manifest"
    console().print(f"ok: {report.path}{extra}", highlight=False, soft_wrap=True)


@app.command("path")
def model_path(
    ctx: typer.Context,
    model: Optional[str] = typer.Option(None, "--model", help="model directory or name (highest precedence)"),
) -> None:
    """Print the model directory that would be used, and which setting chose it."""
    settings = context.settings_of(ctx)
    models_dir, _ = _dirs(settings)
    try:
        resolved = resolve_model(models_dir, flag=model, config=settings.vosk_model)
    except ModelError as exc:
        raise _fail(exc) from None
    console().print(str(resolved.path), highlight=False, soft_wrap=True)
    console(stderr=True).print(f"(chosen by {resolved.source})", highlight=False)
