"""The docs show the numbers of the committed results.json files, not numbers typed by hand:
each block that docs/write_results_section.py writes is what results.json gives today."""

import importlib.util
import json
from pathlib import Path

import pytest

from reslearn.experiments.report_page import results_markdown

ROOT = Path(__file__).resolve().parents[1]
#: (doc, experiment folder) whose block the doc holds
BLOCKS = [("docs/reproducing.md", "results/cifar-laptop")]


def _script():
    path = ROOT / "docs" / "write_results_section.py"
    spec = importlib.util.spec_from_file_location("write_results_section", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize(("doc", "folder"), BLOCKS)
def test_a_docs_block_shows_its_results_json(doc, folder):
    script = _script()
    text = (ROOT / doc).read_text()
    block = script.block_of(text, ROOT / folder)  # the markers are there
    results_file = ROOT / folder / "results.json"
    if not results_file.is_file():
        pytest.skip(f"{folder} has no results.json yet (the suite is still training)")
    expected = results_markdown(json.loads(results_file.read_text()))
    assert expected in block, (
        f"{doc} is out of date: run python docs/write_results_section.py {folder} {doc}"
    )
    for link in (line.split("](")[1][:-1] for line in block.splitlines() if "](" in line):
        assert ((ROOT / doc).parent / link).is_file(), link
