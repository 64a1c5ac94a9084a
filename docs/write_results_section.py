"""Write an experiment's numbers into a doc from its results.json, so that the doc, the report
page and results.json cannot disagree: the report (report.html, report.md and the figures) is
redrawn in the experiment folder, and the doc's block between the two markers below is replaced
with the experiment's tables (``results_markdown``) and its figures, linked.

    python docs/write_results_section.py results/cifar-laptop docs/reproducing.md

The doc must hold the markers already (once each), e.g. for results/cifar-laptop:

    <!-- begin results/cifar-laptop/results.json (docs/write_results_section.py) -->
    <!-- end results/cifar-laptop/results.json -->

Everything outside them is left as it is; tests/test_docs_results.py checks the block.
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

from reslearn.experiments import get_experiment
from reslearn.experiments.base import RESULTS_FILE
from reslearn.experiments.report_page import results_markdown, write_experiment_report
from reslearn.jsonfile import read_json

ROOT = Path(__file__).resolve().parents[1]


def markers(folder: Path) -> tuple[str, str]:
    """The lines that open and close the block of ``folder``'s results (relative to the
    project) in a doc."""
    name = Path(os.path.relpath(folder.resolve() / RESULTS_FILE, ROOT)).as_posix()
    return (f"<!-- begin {name} (docs/write_results_section.py) -->", f"<!-- end {name} -->")


def block_span(doc_text: str, folder: Path) -> tuple[int, int]:
    """Where the text between the markers of ``folder`` starts and ends in a doc (ValueError
    when they are not there once each, in order)."""
    begin, end = markers(folder)
    if doc_text.count(begin) != 1 or doc_text.count(end) != 1:
        raise ValueError(f"the doc needs the lines {begin!r} and {end!r} once each")
    start, stop = doc_text.index(begin) + len(begin), doc_text.index(end)
    if stop < start:
        raise ValueError(f"{end!r} comes before {begin!r}")
    return start, stop


def block_of(doc_text: str, folder: Path) -> str:
    """The text between the markers of ``folder`` in a doc."""
    start, stop = block_span(doc_text, folder)
    return doc_text[start:stop]


def write(folder: Path, doc: Path) -> None:
    """Redraw ``folder``'s report and rewrite its block in ``doc``."""
    results = read_json(folder / RESULTS_FILE)
    block_span(doc.read_text(), folder)  # the markers are there before anything is drawn
    write_experiment_report(folder)
    figures = get_experiment(results["experiment"]).figures(results, folder)
    links = [
        f"![{caption}]({Path(os.path.relpath(folder / name, doc.parent)).as_posix()})\n\n"
        f"*{caption}*"
        for name, caption in figures
    ]
    text = doc.read_text()
    start, stop = block_span(text, folder)
    new = "\n" + results_markdown(results) + "\n" + "\n\n".join(links) + "\n"
    doc.write_text(text[:start] + new + text[stop:])
    print(f"{doc}: {len(figures)} figures and the tables of {folder / RESULTS_FILE}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("folder", type=Path, help="an experiment folder with results.json")
    parser.add_argument("doc", type=Path, help="the Markdown doc that holds the markers")
    args = parser.parse_args()
    try:
        write(args.folder, args.doc)
    except (OSError, ValueError) as error:
        raise SystemExit(f"write_results_section: {error}") from None


if __name__ == "__main__":
    main()
