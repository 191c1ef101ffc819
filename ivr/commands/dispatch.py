"""`ivr dispatch`: train the dispatch classifier, evaluate it on a labelled set, try it on a sentence."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Optional

import typer

from asr.textclass import ClassifierError, TextClassifier
from ivr.commands import context
from ivr.config import Settings
from ivr.triage.dispatch import (
    DEFAULT_CATALOGUE, CatalogueError, Dispatcher, evaluate, format_evaluation, load_dispatch_catalogue, load_labelled,
    model_path, retrain, save_model,
)

app = typer.Typer(help="Dispatch suggestion: retrain the classifier, evaluate it, try it on a transcript.",
                  no_args_is_help=True)

_MODEL_HELP = "Model file (default: dispatch-model.npz in the data directory)."


def _model_file(ctx: typer.Context, model: Optional[Path]) -> Path:
    return model if model is not None else model_path(context.settings_of(ctx).data_dir)


def _store_corrections(settings: Settings) -> list[Any]:
    """Operators' corrections from the ticket store; none when the SQLite database does not exist yet."""
    url = settings.database_url
    if url.startswith("sqlite:///") and not Path(url[len("sqlite:///"):]).exists():
        return []
    from ivr.tickets import TicketStore

    return list(TicketStore(url).corrections())


def _read_corrections(path: Path) -> list[tuple[str, str]]:
    try:
        return load_labelled(path)
    except CatalogueError as exc:
        raise context.fail(str(exc)) from None


@app.command("retrain")
def retrain_cmd(
    ctx: typer.Context,
    model: Optional[Path] = typer.Option(None, "--model", "-m", help=_MODEL_HELP),
    catalogue: Path = typer.Option(DEFAULT_CATALOGUE, "--catalogue", help="Dispatch catalogue (YAML)."),
    corrections: Optional[Path] = typer.Option(
        None, "--corrections", help="Extra corrections, a TSV of text<TAB>category."),
    from_store: bool = typer.Option(True, "--from-store/--no-store",
                                    help="Learn from the operators' corrections in the ticket store."),
) -> None:
    """Train the classifier on the catalogue's examples and the operators' corrections, and save it."""
    path = _model_file(ctx, model)
    try:
        cat = load_dispatch_catalogue(catalogue)
    except CatalogueError as exc:
        raise context.fail(str(exc)) from None
    corr: list[Any] = []
    if from_store:
        corr += _store_corrections(context.settings_of(ctx))
    if corrections is not None:
        corr += _read_corrections(corrections)
    try:
        trained = retrain(cat, corr)
    except ClassifierError as exc:
        raise context.fail(str(exc)) from None
    save_model(trained, path)
    n_examples = sum(len(c.examples) for c in cat.categories)
    typer.echo(
        f"trained on {n_examples} catalogue examples in {len(cat.categories)} categories and "
        f"{trained.meta['n_corrections']} corrections ({trained.meta['n_skipped']} skipped); "
        f"{trained.meta['n_features']} features"
    )
    typer.echo(f"saved {path} ({path.stat().st_size / 1024:.0f} KiB)")


@app.command("evaluate")
def evaluate_cmd(
    ctx: typer.Context,
    labelled: Path = typer.Argument(..., help="Labelled sentences: a TSV of text<TAB>category."),
    model: Optional[Path] = typer.Option(None, "--model", "-m", help=_MODEL_HELP),
    errors: bool = typer.Option(False, "--errors", help="List every misclassified sentence."),
) -> None:
    """Accuracy, top-3 accuracy and the confusion by category on a labelled set."""
    path = _model_file(ctx, model)
    if not path.exists():
        raise context.fail(f"no dispatch model at {path}: run `ivr dispatch retrain` first")
    try:
        clf = TextClassifier.load(path)
        ev = evaluate(clf, load_labelled(labelled))
    except (ClassifierError, CatalogueError) as exc:
        raise context.fail(str(exc)) from None
    typer.echo(format_evaluation(ev))
    if errors and ev.errors:
        typer.echo("\nmisclassified:")
        for text, true, got in ev.errors:
            typer.echo(f"  [{true} -> {got}] {text}")


@app.command("suggest")
def suggest_cmd(
    ctx: typer.Context,
    transcript: str = typer.Argument(..., help="A transcript (Mandarin text)."),
    model: Optional[Path] = typer.Option(None, "--model", "-m", help=_MODEL_HELP),
) -> None:
    """The suggestion for one transcript, as JSON (category, district, urgency, caller details)."""
    path = _model_file(ctx, model)
    try:
        dispatcher = Dispatcher.load_or_train(path)
    except ClassifierError as exc:
        raise context.fail(str(exc)) from None
    typer.echo(json.dumps(dispatcher.suggest(transcript).to_dict(), ensure_ascii=False, indent=2))
