"""``gptoss-doctor publish RESULTS... -o DIR``: a static results site from many runs."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from gptoss_doctor.app import publish
from gptoss_doctor.cli import output
from gptoss_doctor.cli.errors import EXIT_FAILED
from gptoss_doctor.reports import site


@click.command("publish")
@click.argument("results_files", nargs=-1, type=click.Path(path_type=Path, dir_okay=False))
@click.option("-o", "--output", "destination", required=True,
              type=click.Path(path_type=Path, file_okay=False),
              help="The site's folder (new, empty, or a site published before: replaced).")
@click.option("--no-redact", is_flag=True,
              help="Publish paths, host names and addresses as recorded (default: redacted).")
@click.option("--from", "source", metavar="hf://datasets/OWNER/NAME",
              help="Add every run of a shared collection on the Hugging Face Hub.")
@click.option("--json", "as_json", is_flag=True, help="Print what was published as JSON.")
def publish_command(results_files: tuple[Path, ...], destination: Path, no_redact: bool,
                    source: str | None, as_json: bool) -> None:
    """Build a static site (index, a page per run and per comparable group, index.json)
    from any number of results files; duplicates appear once.

    Exit 0 when every file was published, 1 when some could not be read (they are named,
    the site holds the rest), 2 when none could or one is from a newer gptoss-doctor.
    """
    feedback = output.feedback()
    publish.check_destination(destination)
    options = publish.PublishOptions(results_files, destination, not no_redact, source)
    collected = publish.collect(options, feedback)
    pages = site.pages(collected, feedback)
    target = publish.write_site(destination, pages, feedback)
    if as_json:
        output.echo_json(site.envelope(collected, target, pages))
    else:
        for line in site.summary_lines(collected, target):
            output.echo(line)
    if collected.skipped:
        sys.exit(EXIT_FAILED)
