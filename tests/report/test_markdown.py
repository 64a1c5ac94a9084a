"""report.md's page: Markdown tables that stay tables whatever the cells hold, figures linked
relative to the page, the same calls as report.html's page."""

from reslearn.report.markdown import MarkdownPage, markdown_table


def test_a_table_keeps_one_row_per_row_whatever_the_cells_hold():
    text = markdown_table(("a", "b"), [("x | y", "two\nlines"), ("1", "2")])
    lines = text.splitlines()
    assert lines[0] == "| a | b |" and lines[1] == "|---|---|"
    assert lines[2] == "| x \\| y | two lines |"
    assert len(lines) == 4


def test_a_page_links_its_figures_relative_to_its_folder_and_bolds_verdicts(tmp_path):
    page = MarkdownPage("Title", "sub", base=tmp_path)
    page.heading("Figures")
    page.figure(tmp_path / "figs" / "curve.png", "Error [%] against steps")
    page.table(("claim", "verdict"), [("A beats B", "holds"), ("C beats D", "")], "caption",
               verdict_column=1)  # fmt: skip
    page.note("budgeted", "warning")
    page.definitions({"torch": "2.14"})
    page.code("reslearn reproduce cifar")
    path = page.write(tmp_path / "report.md")
    text = path.read_text()
    assert text.startswith("# Title\n\n*sub*\n\n## Figures\n\n")
    assert "![Error (%) against steps](figs/curve.png)" in text
    assert "| A beats B | **holds** |" in text and "| C beats D |  |" in text
    assert "caption\n\n| claim | verdict |" in text
    assert "> **Warning:** budgeted" in text and "- **torch**: 2.14" in text
    assert "```\nreslearn reproduce cifar\n```" in text
