"""`ivr flows`: check flow files, draw them, and evaluate how well their menus understand callers."""
from __future__ import annotations

from pathlib import Path

import typer

from ivr.commands import context
from ivr.flow.evaluate import EvalError, evaluate_menus, format_scores, load_phrasings
from ivr.flow.graph import FORMATS, to_dot, to_mermaid
from ivr.flow.loader import FlowError, check_flow, load_flow
from ivr.kb import KbError, load_kb
from prompts import PromptError, load_catalogue

app = typer.Typer(help="Check, draw and evaluate the call flows.", no_args_is_help=True)


def _prompt_ids() -> set[str]:
    try:
        return set(load_catalogue(context.settings().prompts_catalogue).prompts)
    except PromptError as exc:
        raise context.fail(str(exc)) from None


def _kb_entries() -> set[str] | None:
    """The knowledge base's entry ids, which kb nodes may offer by key (None: no knowledge base, not checked)."""
    kb_dir = context.settings().kb_dir
    if not any(kb_dir.glob("*.yaml")):
        return None
    try:
        return {e.id for e in load_kb(kb_dir).entries}
    except KbError as exc:
        raise context.fail(str(exc)) from None


@app.command()
def check(files: list[Path] = typer.Argument(None, help="Flow files (default: every *.yaml in the flows folder).",
                                              show_default=False)) -> None:
    """Report every problem in the flows: unknown targets, unreachable nodes, dead ends, duplicate keys,
    missing prompts, out-of-range time-outs, knowledge-base entries kb nodes offer that the knowledge base lacks.
    Exit status 1 when there is any."""
    s = context.settings()
    files = files or sorted(s.flows_dir.glob("*.yaml"))
    if not files:
        raise context.fail(f"no flow files in {s.flows_dir}")
    prompts, entries = _prompt_ids(), _kb_entries()
    bad = 0
    for path in files:
        flow, problems = check_flow(path, prompts, entries)
        for p in problems:
            typer.echo(str(p))
        if problems:
            bad += 1
        elif flow is not None:
            typer.echo(f"{path}: ok ({len(flow.nodes)} nodes, {len(flow.prompts_used)} prompts)")
    if bad:
        raise typer.Exit(1)


@app.command()
def graph(
    file: Path = typer.Argument(..., help="The flow file."),
    fmt: str = typer.Option("mermaid", "--format", "-f", help="mermaid or dot (Graphviz)."),
) -> None:
    """Print the flow as a Mermaid flowchart or a Graphviz digraph."""
    if fmt not in FORMATS:
        raise context.fail(f"--format {fmt!r}: use one of {', '.join(FORMATS)}", 2)
    try:
        flow = load_flow(file, _prompt_ids())
    except FlowError as exc:
        raise context.fail(str(exc)) from None
    typer.echo(to_mermaid(flow) if fmt == "mermaid" else to_dot(flow), nl=False)


@app.command()
def evaluate(
    file: Path = typer.Argument(None, help="The flow file (default: the configured flow).", show_default=False),
    phrasings: Path = typer.Option(None, "--set", help="Labelled phrasings, menu<TAB>expect<TAB>text (default: "
                                                        "<flow>.eval.tsv beside the flow).", show_default=False),
) -> None:
    """Accuracy and confusions per menu on labelled caller phrasings: by keywords alone and combined with the
    menu's learned intent model (`understand`)."""
    file = file or context.settings().flow
    phrasings = phrasings or file.with_suffix(".eval.tsv")
    try:
        flow = load_flow(file, _prompt_ids())
        scores = evaluate_menus(flow, load_phrasings(phrasings, flow))
    except (FlowError, EvalError) as exc:
        raise context.fail(str(exc)) from None
    typer.echo(format_scores(scores, flow))
