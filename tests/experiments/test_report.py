"""report.html of runs and experiments: what the page contains, the `report` and `reproduce`
commands, and the page as headless Chromium renders it."""

import base64
import html
import importlib.util
import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from reslearn.cli import main
from reslearn.experiments.report_page import budget_text, results_markdown

DOCS = Path(__file__).resolve().parents[2] / "docs"

pytestmark = pytest.mark.trains  # runs the trainer (pytest -m "not trains" leaves it out)


@pytest.fixture(scope="module")
def experiment(tmp_path_factory, tiny_data):
    """A tiny degradation experiment run through the command line."""
    out = tmp_path_factory.mktemp("cli") / "degradation"
    cache = tmp_path_factory.getbasetemp() / "experiment-cache"
    argv = ["reproduce", "degradation", "--data", str(tiny_data), "--out", str(out),
            "--iterations", "3", "--batch-size", "16", "--depths", "20", "32", "--quiet",
            "--cache-dir", str(cache)]  # fmt: skip
    assert main(argv) == 0
    return out


def _images(page: str) -> list[bytes]:
    return [base64.b64decode(m) for m in re.findall(r'src="data:image/png;base64,([^"]+)"', page)]


def test_experiment_page_has_figures_tables_budget_and_command(experiment, capsys):
    page = (experiment / "report.html").read_text()
    images = _images(page)
    assert len(images) == 2 and all(i.startswith(b"\x89PNG") for i in images)
    assert "Budgeted run, not the paper&#x27;s recipe: 3 iterations" in page
    assert "Published claims, checked" in page
    for row in ("plain-20", "plain-32", "ResNet-20", "ResNet-32"):
        assert f"<td>{row}</td>" in page
    assert "<td>8.75</td>" in page  # Table 6 beside ours
    assert "reslearn reproduce degradation --data" in page and "--iterations 3" in page
    results = json.loads((experiment / "results.json").read_text())
    assert results["environment"]["torch"] in page


def test_cli_prints_tables_claims_and_the_report_path(tiny_data, tmp_path, capsys):
    argv = ["reproduce", "shortcuts", "--data", str(tiny_data), "--out", str(tmp_path / "s"),
            "--iterations", "2", "--batch-size", "16", "--quiet"]  # fmt: skip
    assert main(argv) == 0
    out = capsys.readouterr().out
    assert "ResNet-20 A" in out and "ResNet-20 C" in out
    assert out.strip().endswith(f"report: {tmp_path / 's' / 'report.html'}")


def test_report_command_regenerates_both_kinds_of_page(experiment, capsys):
    run_dir = experiment / "runs" / "resnet20-s0"
    for folder in (experiment, run_dir):
        (folder / "report.html").unlink()
        assert main(["report", str(folder)]) == 0
        assert capsys.readouterr().out.strip() == str(folder / "report.html")
        assert (folder / "report.html").is_file()


def test_report_md_beside_the_page_says_the_same(experiment):
    page = (experiment / "report.html").read_text()
    text = (experiment / "report.md").read_text()
    cells = [html.unescape(c) for c in re.findall(r"<td[^>]*>([^<]*)</td>", page)]
    assert len(cells) > 20
    missing = [c for c in cells if f"| {c.replace('|', chr(92) + '|')} |" not in text
               and f"| **{c}** |" not in text]  # fmt: skip
    assert not missing
    links = re.findall(r"\]\(([^)]+\.png)\)", text)
    assert len(links) == 2 and all((experiment / link).is_file() for link in links)


def _docs_script():
    spec = importlib.util.spec_from_file_location("write_results_section",
                                                  DOCS / "write_results_section.py")  # fmt: skip
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_a_docs_block_is_rewritten_from_results_json_and_nothing_else(experiment, tmp_path):
    script = _docs_script()
    begin, end = script.markers(experiment)
    doc = tmp_path / "notes" / "doc.md"
    doc.parent.mkdir()
    doc.write_text(f"# Notes\n\nmine\n\n{begin}\nstale numbers\n{end}\n\nmine too\n")
    script.write(experiment, doc)
    text = doc.read_text()
    assert text.startswith("# Notes\n\nmine\n\n") and text.endswith(f"{end}\n\nmine too\n")
    block = script.block_of(text, experiment)
    assert "stale numbers" not in block
    results = json.loads((experiment / "results.json").read_text())
    assert results_markdown(results) in block
    assert "plain-32" in block and "hold with this budget" in block
    links = re.findall(r"\]\(([^)]+\.png)\)", block)
    assert len(links) == 2 and all((doc.parent / link).is_file() for link in links)
    # an empty block is filled in place (the text before it has the same newline)
    empty = tmp_path / "empty.md"
    empty.write_text(f"# T\n\n{begin}\n{end}\n")
    script.write(experiment, empty)
    assert empty.read_text().startswith(f"# T\n\n{begin}\n{results_markdown(results)}")
    # a doc without the markers is refused and left as it was
    other = tmp_path / "other.md"
    other.write_text("no markers\n")
    with pytest.raises(ValueError, match="needs the lines"):
        script.write(experiment, other)
    assert other.read_text() == "no markers\n"


def test_run_page_has_curves_confusion_per_class_and_settings(experiment):
    page = (experiment / "runs" / "plain20-s0" / "report.html").read_text()
    assert len(_images(page)) == 2  # curves and confusion matrix
    assert "Per-class accuracy, lowest first" in page
    for name in ("<td>a</td>", "<td>b</td>", "<td>c</td>", "&quot;model&quot;: &quot;plain20"):
        assert name in page
    evaluation = json.loads((experiment / "runs" / "plain20-s0" / "evaluation.json").read_text())
    assert sum(map(sum, evaluation["confusion"])) == 24


def test_an_unfinished_run_gets_a_page_that_says_so(experiment, tmp_path):
    run_dir = tmp_path / "run"
    shutil.copytree(experiment / "runs" / "plain32-s0", run_dir)
    for name in ("summary.json", "evaluation.json", "report.html", "curves.png"):
        (run_dir / name).unlink()
    assert main(["report", str(run_dir)]) == 0
    page = (run_dir / "report.html").read_text()
    assert "Unfinished" in page and f"reslearn train --resume {run_dir}" in page
    assert len(_images(page)) == 1  # curves redrawn from metrics.jsonl


@pytest.mark.subprocess
@pytest.mark.parametrize(
    "args,message",
    [
        (["report", "/no/such/folder"], "no such folder"),
        (["reproduce"], "name an experiment"),
        (["reproduce", "fig8"], "invalid choice"),
        (["reproduce", "degradation", "--iterations", "0"], "--iterations must be a positive"),
        (["reproduce", "responses", "--weights", "resnet20"], "expected NAME=FILE"),
    ],
)
def test_bad_input_is_one_line(args, message):
    result = subprocess.run(
        [sys.executable, "-m", "reslearn", *args], capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 2
    assert len(result.stderr.strip().splitlines()) == 1, result.stderr
    assert message in result.stderr and "Traceback" not in result.stderr


def test_budget_sentence_separates_budgeted_from_full_runs():
    full = {"iterations": 64000, "full_paper_recipe": True}
    assert budget_text(full)[1] == "ok"
    budgeted = {
        "iterations": 2000, "epochs": 5.13, "milestones": [1000, 1500], "recipe": "paper",
        "fraction_of_paper": 2000 / 64000, "paper_iterations": 64000, "full_paper_recipe": False,
    }  # fmt: skip
    text, kind = budget_text(budgeted)
    assert kind == "warning"
    assert "2,000 iterations (5.13 epochs)" in text and "3.1% of the paper's 64,000" in text


def test_pages_render_in_headless_chromium(experiment, chromium):
    browser = chromium
    for page, figures in (
        (experiment / "report.html", 2),
        (experiment / "runs" / "resnet32-s0" / "report.html", 2),
    ):
        browser.get(page.resolve().as_uri())
        assert browser.title
        widths = browser.execute_script(
            "return Array.from(document.images).map(i => i.complete ? i.naturalWidth : 0)"
        )
        assert len(widths) == figures and min(widths) > 100  # every figure decoded
        tables = browser.execute_script("return document.querySelectorAll('table').length")
        assert tables >= 1
    rows = browser.execute_script(
        "return Array.from(document.querySelectorAll('tr')).map("
        "r => Array.from(r.cells).map(c => c.innerText.trim()))"
    )
    # the run page's per-class table, as rendered: one row per class with its accuracy
    evaluation = json.loads((experiment / "runs" / "resnet32-s0" / "evaluation.json").read_text())
    for name, accuracy in evaluation["per_class_accuracy"].items():
        shown = "-" if accuracy is None else f"{100 * accuracy:.2f}%"
        assert [name, shown] in rows, (name, shown, rows)
