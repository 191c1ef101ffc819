"""The `ivr` command."""
from __future__ import annotations

import sys
from pathlib import Path
from typing import Optional

import typer

from ivr import __version__
from ivr.commands import context
from ivr.commands.call import app as call_app
from ivr.commands.console import app as console_app
from ivr.commands.dispatch import app as dispatch_app
from ivr.commands.dtmf import app as dtmf_app
from ivr.commands.flows import app as flows_app
from ivr.commands.kb import app as kb_app
from ivr.commands.models import app as models_app
from ivr.commands.prompts import app as prompts_app
from ivr.commands.queue import app as queue_app
from ivr.commands.cluster import app as cluster_app
from ivr.commands.serve import serve
from ivr.commands.simulate import simulate
from ivr.commands.tickets import app as tickets_app
from ivr.commands.transcribe import app as transcribe_app
from ivr.commands.users import app as users_app
from ivr.config import ConfigError

app = typer.Typer(
    name="ivr",
    help=(
        "Offline voice front-end for a Mandarin citizen-service hotline (12345).\n\n"
        "Answers calls with a Mandarin voice menu, hears keys and speech (webrtcvad + Vosk, no internet), "
        "turns each caller's complaint into a transcribed ticket, and queues callers with a callback that "
        "keeps their place.\n\n"
        "Settings come from --config / IVR_CONFIG / ./ivr.toml and IVR_* environment variables."
    ),
    no_args_is_help=True,
    add_completion=False,
    rich_markup_mode="rich",
    context_settings={"help_option_names": ["-h", "--help"]},
    pretty_exceptions_enable=False,
)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"ivr {__version__}")
        raise typer.Exit()


@app.callback()
def main_options(
    config: Optional[Path] = typer.Option(None, "--config", "-c", help="TOML settings file.", metavar="FILE"),
    data_dir: Optional[Path] = typer.Option(None, "--data-dir", help="Where tickets, recordings, models and rendered prompts live."),
    verbose: int = typer.Option(0, "--verbose", "-v", count=True, help="More log output (-vv for debug)."),
    version: bool = typer.Option(False, "--version", callback=_version, is_eager=True, help="Show the version."),
) -> None:
    context.configure(config, {"data_dir": data_dir}, verbose)


app.command(
    help="Run one call through the flow with a simulated caller (WAV files and key presses) and print its ticket.",
    epilog=(
        "Examples:  ivr simulate --keys 1 --caller audio_fixtures/zh/c01.wav  |  "
        "ivr simulate --script 'say:audio_fixtures/zh/m01.wav; say:audio_fixtures/zh/c03.wav; hangup'"
    ),
)(simulate)
app.command(
    help="Answer SIP calls (UDP), run the call flow on each, write tickets, and serve the operator console.",
    epilog=("Example:  ivr serve --port 5060 --allow 10.1.0.0/16 --trust 10.1.0.5   (Ctrl-C drains calls in progress "
            "for up to --drain seconds, then hangs up the rest; kill -HUP reloads the operators from the "
            "configuration)\n\n"
            "New calls are limited per source address (settings sip_invite_rate 20/s, sip_invite_burst 40, "
            "sip_max_calls_per_source) and from all addresses together (sip_global_invite_rate 100/s, "
            "sip_global_invite_burst 200); over a limit an INVITE gets 503 with Retry-After. Every call of a "
            "carrier's SBC or of a proxy in front comes from one address: list it with --trust (sip_trusted) and "
            "only the global limit applies to it (sip_trusted_invite_rate sets one of its own). In ivr.toml these "
            "are \\[sip] invite_rate = 20, trusted = [\"10.1.0.5\"] ...; in the environment IVR_SIP_TRUSTED=10.1.0.5."),
)(serve)
app.add_typer(call_app, name="call")
app.add_typer(tickets_app, name="tickets")
app.add_typer(transcribe_app, name="transcribe")
app.add_typer(queue_app, name="queue")
app.add_typer(cluster_app, name="cluster")
app.add_typer(flows_app, name="flows")
app.add_typer(kb_app, name="kb")
app.add_typer(prompts_app, name="prompts")
app.add_typer(models_app, name="models")
app.add_typer(dispatch_app, name="dispatch")
app.add_typer(users_app, name="users")
app.add_typer(console_app, name="console")
app.add_typer(dtmf_app, name="dtmf")


def main() -> None:
    try:
        app()
    except ConfigError as exc:
        typer.secho(f"ivr: configuration error: {exc}", fg="red", err=True)
        sys.exit(2)


if __name__ == "__main__":
    main()
