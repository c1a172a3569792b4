"""``gptoss-doctor share RESULTS.json... --to hf://datasets/OWNER/NAME``: add runs to a
shared collection on the Hugging Face Hub, redacted (docs/sharing.md)."""

from __future__ import annotations

from pathlib import Path

import click

from gptoss_doctor.app import share
from gptoss_doctor.cli import output
from gptoss_doctor.reports import share_view


@click.command("share")
@click.argument("results_files", nargs=-1, required=True,
                type=click.Path(path_type=Path, dir_okay=False))
@click.option("--to", "to", required=True, metavar="hf://datasets/OWNER/NAME",
              help="The Hugging Face dataset to add the runs to (it must exist).")
@click.option("--no-redact", is_flag=True,
              help="Upload paths, host names and addresses as recorded (default: redacted).")
@click.option("--json", "as_json", is_flag=True, help="Print what was shared as JSON.")
def share_command(results_files: tuple[Path, ...], to: str, no_redact: bool,
                  as_json: bool) -> None:
    """Upload results files to a Hugging Face dataset, one file per run named by its
    content hash (runs/<sha256>.json), so a collection grows without conflicts and sharing
    a run twice adds nothing. Each file is redacted first and what was removed is printed.

    The token is read from HF_TOKEN (never printed or stored). Exit 0 when shared (or
    already there), 1 when the Hub refused or could not be reached, 2 for a bad file, a
    bad --to or no token.
    """
    options = share.ShareOptions(results_files, to, not no_redact)
    shared = share.share(options, output.feedback())
    if as_json:
        output.echo_json(share_view.envelope(shared))
        return
    for line in share_view.lines(shared):
        output.echo(line)
