"""`ivr kb`: check the knowledge base's files, search it, and evaluate the search on a labelled set."""
from __future__ import annotations

from datetime import date, datetime
from pathlib import Path

import typer

from ivr.commands import context
from ivr.kb import DEFAULT_THRESHOLD, KbError, KnowledgeBase, check_kb, load_kb
from ivr.kb.evaluate import evaluate as run_evaluation
from ivr.kb.evaluate import format_report, load_questions

app = typer.Typer(help="Check, search and evaluate the knowledge base.", no_args_is_help=True)

_DIR = typer.Option(None, "--dir", help="The knowledge base folder (default: the kb_dir setting).",
                    show_default=False)


def _load(directory: Path | None) -> KnowledgeBase:
    try:
        return load_kb(directory or context.settings().kb_dir)
    except KbError as exc:
        raise context.fail(str(exc)) from None


def _today(value: str | None) -> date:
    if value is None:
        return datetime.now(context.settings().tz).date()  # the hotline's date
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise context.fail(f"--today {value!r} is not a date (YYYY-MM-DD)", 2) from None


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}{'' if n == 1 else 's'}"


@app.command()
def check(
    directory: Path = typer.Argument(None, help="The knowledge base folder (default: the kb_dir setting).",
                                     show_default=False),
    today: str = typer.Option(None, "--today", help="Check expiry as of this date (default: today).",
                              show_default=False),
) -> None:
    """Report every error and warning: duplicate ids or question forms, missing fields, answers over 30 s, expired
    or expiring entries, unverified ones. Exit status 1 when there is an error."""
    directory = directory or context.settings().kb_dir
    day = _today(today)
    findings = check_kb(directory, day)
    for finding in findings:
        typer.echo(f"{finding.level}: {finding}")
    errors = sum(f.level == "error" for f in findings)
    if errors:
        typer.echo(f"{directory}: {_count(errors, 'error')}, {_count(len(findings) - errors, 'warning')}")
        raise typer.Exit(1)
    kb = load_kb(directory)
    typer.echo(f"{directory}: ok ({len(kb)} entries, {len(kb.speakable(day))} spoken on {day}, "
               f"{_count(len(findings), 'warning')})")


@app.command()
def search(
    question: str = typer.Argument(..., help="What the caller said."),
    limit: int = typer.Option(3, "--limit", "-n", min=1, help="How many entries to show."),
    directory: Path = _DIR,
) -> None:
    """The best entries for a question, with how sure the search is and whether the line may speak them."""
    kb = _load(directory)
    hits = kb.search(question, limit=limit)
    if not hits:
        typer.echo("no entry found")
        return
    today = _today(None)
    for hit in hits:
        e = hit.entry
        flag = "spoken" if e.speakable(today) else ("expired" if e.expired(today) else e.status)
        typer.echo(f"{hit.score:.2f}  {e.id:<28} {e.title}  [{flag}]")


@app.command()
def evaluate(
    file: Path = typer.Argument(..., help="The set: question<TAB>expected (an entry id, or - when none answers)."),
    threshold: float = typer.Option(DEFAULT_THRESHOLD, "--threshold", min=0.0, max=1.0,
                                    help="The score from which an answer is spoken."),
    today: str = typer.Option(None, "--today", help="Which entries are speakable as of this date (default: today).",
                              show_default=False),
    sweep: bool = typer.Option(False, "--sweep", help="Also print wrong and right answers spoken per threshold."),
    misses: bool = typer.Option(False, "--misses", help="Also list the questions not found first."),
    min_top3: float = typer.Option(0.0, "--min-top3", min=0.0, max=1.0,
                                   help="Exit status 1 when top-3 accuracy is below this (CI's floor)."),
    directory: Path = _DIR,
) -> None:
    """Top-1 and top-3 accuracy, wrong answers spoken at the threshold, and search time per question."""
    kb = _load(directory)
    try:
        questions = load_questions(file, kb)
    except KbError as exc:
        raise context.fail(str(exc)) from None
    report = run_evaluation(kb, questions, threshold, _today(today))
    typer.echo(format_report(report, sweep=sweep, misses=misses))
    if report.top(3) < min_top3:
        raise context.fail(f"top-3 {report.top(3):.1%} is below the floor {min_top3:.1%}")
