"""The Markdown twin of ``HtmlPage``: the same calls give a ``report.md`` with the same words
and numbers, for a README, a paper's notes or a pull request, where a report.html cannot go.
Figures are linked (relative to the page), not embedded."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

from reslearn.text import display_name

_NOTE_WORDS = {"warning": "Warning", "ok": "Note", "": "Note"}


def _cell(text: object) -> str:
    """One table cell: pipes escaped and line breaks folded so that the row stays one row."""
    return display_name(str(text)).replace("|", "\\|").replace("\n", " ")


def markdown_table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    """A GitHub-flavoured Markdown table."""
    lines = ["| " + " | ".join(map(_cell, header)) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(map(_cell, row)) + " |" for row in rows]
    return "\n".join(lines)


class MarkdownPage:
    """Build a Markdown page with ``HtmlPage``'s calls; ``write`` saves it. Images are linked
    relative to the folder the page is written into (``base``)."""

    def __init__(self, title: str, subtitle: str = "", *, base: str | Path = ".") -> None:
        self.title = title
        self.base = Path(base)
        self.parts = [f"# {display_name(title)}"]
        if subtitle:
            self.parts.append(f"*{display_name(subtitle)}*")

    def heading(self, text: str) -> None:
        """A section heading."""
        self.parts.append(f"## {display_name(text)}")

    def paragraph(self, text: str) -> None:
        """A paragraph of text."""
        self.parts.append(display_name(text))

    def note(self, text: str, kind: str = "") -> None:
        """A quoted box; ``kind`` is "", "warning" or "ok", as for ``HtmlPage.note``."""
        self.parts.append(f"> **{_NOTE_WORDS.get(kind, 'Note')}:** {display_name(text)}")

    def figure(self, image: str | Path, caption: str) -> None:
        """A linked image with its caption below it."""
        link = Path(os.path.relpath(Path(image), self.base)).as_posix()
        alt = display_name(caption).replace("]", ")").replace("[", "(")
        self.parts.append(f"![{alt}]({link})\n\n*{display_name(caption)}*")

    def table(
        self,
        header: Sequence[str],
        rows: Sequence[Sequence[str]],
        caption: str = "",
        *,
        verdict_column: int | None = None,
    ) -> None:
        """A table under its caption; ``verdict_column``'s verdicts are set in bold (Markdown
        has no colour)."""
        if verdict_column is not None:
            rows = [
                [f"**{c}**" if i == verdict_column and c else c for i, c in enumerate(row)]
                for row in rows
            ]
        self.parts.append((f"{display_name(caption)}\n\n" if caption else "") +
                          markdown_table(header, rows))  # fmt: skip

    def definitions(self, items: dict[str, object]) -> None:
        """A list of names and values."""
        self.parts.append("\n".join(f"- **{_cell(k)}**: {_cell(v)}" for k, v in items.items()))

    def code(self, text: str) -> None:
        """A fenced code block, e.g. a command line."""
        self.parts.append(f"```\n{text}\n```")

    def render(self) -> str:
        """The whole page as a string."""
        return "\n\n".join(self.parts) + "\n"

    def write(self, path: str | Path) -> Path:
        """Save the page (atomically) and return its path."""
        from reslearn.atomic import atomic_write

        text = self.render().encode("utf-8")
        atomic_write(path, lambda f: f.write(text), durable=False)
        return Path(path)
