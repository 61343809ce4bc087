"""The ``recseek report`` command: a report from the JSON that ``recseek run --json`` wrote.

Kept apart from :mod:`recseek.cli` (which lists it) so that the statistics and
rendering modules load only when a report is asked for.
"""

from __future__ import annotations

import time
from pathlib import Path

import click

__all__ = ["check_report_options", "report_cmd", "write_run_report"]

_FORMAT = click.Choice(["html", "md", "latex"])
_SUFFIX = {"html": ".html", "md": ".md", "latex": ".tex"}


def check_report_options(experiment: Path, report: Path | None, baseline: str | None) -> None:
    """Check ``run --report/--baseline`` against the experiment before anything is trained."""
    from ..errors import ParameterError
    from .experiment import load_experiment
    from .report import report_format

    if report is None:
        raise ParameterError("--baseline applies to the report; give --report FILE as well")
    fmt = report_format(report)
    exp = load_experiment(experiment)
    labels = [m["label"] for m in exp.models]
    if baseline is not None and baseline not in labels:
        raise ParameterError(f"--baseline {baseline!r} is not one of the models of {experiment} ({', '.join(labels)})")
    if fmt != "html" and exp.evaluation["task"] != "ranking":
        raise ParameterError(f"{report}: Markdown and LaTeX tables are made for ranking experiments; "
                             "write an .html report for a rating experiment")


def write_run_report(results: list[dict], path: Path, fmt: str | None, baseline: str | None, seed: int) -> None:
    """Write the report and say where and how long it took (shared by ``run --report``)."""
    from .report import write_report

    t0 = time.perf_counter()
    out = write_report(results, path, fmt=fmt, baseline=baseline, seed=seed)
    click.echo(f"wrote {out} ({time.perf_counter() - t0:.1f} s)")


@click.command("report")
@click.argument("results", type=click.Path(dir_okay=False, path_type=Path))
@click.option("-o", "--output", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Report file (default: RESULTS with the format's suffix).")
@click.option("--format", "fmt", type=_FORMAT, default=None,
              help="html (default), md or latex; otherwise taken from the output suffix.")
@click.option("--baseline", default=None, help="Model label every other model is tested against (default: the first).")
@click.option("--seed", type=click.IntRange(min=0), default=0, show_default=True,
              help="Seed of the bootstrap and permutation test.")
def report_cmd(results: Path, output: Path | None, fmt: str | None, baseline: str | None, seed: int) -> None:
    """Write an HTML report (or Markdown / LaTeX tables) from RESULTS, the JSON of ``recseek run --json``."""
    from .report import load_results

    data = load_results(results)
    if output is None:
        output = results.with_suffix(_SUFFIX[fmt or "html"])
    write_run_report(data, output, fmt, baseline, seed)
