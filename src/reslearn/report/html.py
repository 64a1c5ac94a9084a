"""A static, self-contained HTML page: figures embedded as data URIs, so report.html opens from
disk in any browser and survives being mailed or moved away from its folder."""

from __future__ import annotations

import base64
import html
from collections.abc import Sequence
from pathlib import Path

from reslearn.text import display_name

_STYLE = """
body { font: 15px/1.5 system-ui, sans-serif; max-width: 1100px; margin: 2em auto; padding: 0 1em;
       color: #222; }
h1 { font-size: 1.6em; margin-bottom: 0.2em; } h2 { font-size: 1.25em; margin-top: 1.8em;
     border-bottom: 1px solid #ddd; }
.subtitle { color: #666; margin-top: 0; }
.note { padding: 0.6em 1em; border-left: 4px solid #888; background: #f6f6f6; }
.note.warning { border-color: #d08000; background: #fff6e5; }
.note.ok { border-color: #2a8a2a; background: #eef8ee; }
figure { margin: 1em 0; } figure img { max-width: 100%; border: 1px solid #eee; }
figcaption { color: #555; font-size: 0.92em; }
table { border-collapse: collapse; margin: 0.6em 0 1.2em; font-variant-numeric: tabular-nums; }
caption { text-align: left; font-weight: 600; padding-bottom: 0.3em; }
th, td { padding: 0.25em 0.8em; border-bottom: 1px solid #e4e4e4; text-align: right; }
th:first-child, td:first-child { text-align: left; } th { background: #fafafa; }
td.holds { color: #1d7a1d; font-weight: 600; } td.fails { color: #b02020; font-weight: 600; }
pre { background: #f4f4f4; padding: 0.7em 1em; overflow-x: auto; }
dl { display: grid; grid-template-columns: max-content auto; gap: 0.2em 1.2em; }
dt { color: #666; } dd { margin: 0; }
"""


def _escape(text: object) -> str:
    """HTML-escaped text; names with bytes that are not UTF-8 are shown as ``\\xNN``."""
    return html.escape(display_name(str(text)))


#: The first word of a verdict cell and its colour ("not decided" stays plain).
_VERDICT_CLASSES = {w: ' class="holds"' for w in ("yes", "holds")} | {
    w: ' class="fails"' for w in ("no", "fails")
}


class HtmlPage:
    """Build a report page piece by piece; ``write`` saves it. All text is escaped."""

    def __init__(self, title: str, subtitle: str = "") -> None:
        self.title = title
        self.parts = [f"<h1>{_escape(title)}</h1>"]
        if subtitle:
            self.parts.append(f'<p class="subtitle">{_escape(subtitle)}</p>')

    def heading(self, text: str) -> None:
        """A section heading."""
        self.parts.append(f"<h2>{_escape(text)}</h2>")

    def paragraph(self, text: str) -> None:
        """A paragraph of text."""
        self.parts.append(f"<p>{_escape(text)}</p>")

    def note(self, text: str, kind: str = "") -> None:
        """A highlighted box; ``kind`` is "", "warning" or "ok"."""
        self.parts.append(f'<div class="note {kind}">{_escape(text)}</div>')

    def figure(self, image: str | Path, caption: str) -> None:
        """A PNG embedded in the page, with its caption."""
        data = base64.b64encode(Path(image).read_bytes()).decode("ascii")
        self.parts.append(
            f'<figure><img src="data:image/png;base64,{data}" alt="{_escape(caption)}">'
            f"<figcaption>{_escape(caption)}</figcaption></figure>"
        )

    def table(
        self,
        header: Sequence[str],
        rows: Sequence[Sequence[str]],
        caption: str = "",
        *,
        verdict_column: int | None = None,
    ) -> None:
        """A table; cells of ``verdict_column`` starting with "yes"/"holds" or "no"/"fails" are
        coloured (anything else, e.g. "not decided", is left plain)."""
        out = ["<table>"]
        if caption:
            out.append(f"<caption>{_escape(caption)}</caption>")
        out.append("<tr>" + "".join(f"<th>{_escape(h)}</th>" for h in header) + "</tr>")
        for row in rows:
            cells = []
            for index, cell in enumerate(row):
                css = ""
                if index == verdict_column:
                    css = _VERDICT_CLASSES.get(str(cell).split(" ")[0].rstrip(",;:"), "")
                cells.append(f"<td{css}>{_escape(str(cell))}</td>")
            out.append("<tr>" + "".join(cells) + "</tr>")
        out.append("</table>")
        self.parts.append("".join(out))

    def definitions(self, items: dict[str, object]) -> None:
        """A two-column list of names and values."""
        body = "".join(
            f"<dt>{_escape(str(k))}</dt><dd>{_escape(str(v))}</dd>" for k, v in items.items()
        )
        self.parts.append(f"<dl>{body}</dl>")

    def code(self, text: str) -> None:
        """Preformatted text, e.g. a command line or a JSON config."""
        self.parts.append(f"<pre>{_escape(text)}</pre>")

    def render(self) -> str:
        """The whole page as a string."""
        return (
            '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
            f"<title>{_escape(self.title)}</title><style>{_STYLE}</style></head>\n"
            "<body>\n" + "\n".join(self.parts) + "\n</body></html>\n"
        )

    def write(self, path: str | Path) -> Path:
        """Save the page (atomically) and return its path."""
        from reslearn.atomic import atomic_write

        text = self.render().encode("utf-8")
        atomic_write(path, lambda f: f.write(text), durable=False)
        return Path(path)
