"""Names from the file system made safe for every place they are shown.

Class names come from folder names, which on Linux are bytes: ``os.fsdecode`` keeps bytes that
are not UTF-8 as lone surrogates ("caf\\udce9"), which round-trip to the same folder but cannot
be printed to a UTF-8 terminal, drawn by matplotlib or written as UTF-8 HTML. Inside the
library a class keeps its exact name; what is shown to people goes through ``display_name``,
what matplotlib draws through ``plot_text`` (which also escapes mathtext's ``$``), and HTML
through ``html.escape(display_name(...))`` (``reslearn.report.html`` does it).
"""

from __future__ import annotations


def display_name(name: str) -> str:
    """``name`` with bytes that are not UTF-8 shown as ``\\xNN`` (b"caf\\xe9" -> "caf\\xe9");
    any other name comes back unchanged."""
    name = str(name)
    try:
        name.encode("utf-8")
        return name
    except UnicodeEncodeError:
        pass
    try:
        raw = name.encode("utf-8", "surrogateescape")  # the file system's own bytes
    except UnicodeEncodeError:  # surrogates that did not come from os.fsdecode
        return name.encode("utf-8", "backslashreplace").decode("utf-8")
    return raw.decode("utf-8", "backslashreplace")


def display_names(names) -> list[str]:
    """``display_name`` of each name."""
    return [display_name(n) for n in names]


def plot_text(text: str) -> str:
    """Text for matplotlib: ``display_name`` of it with every ``$`` escaped, so a class named
    ``$\\evil$`` is drawn as written instead of being parsed (and failing) as mathtext."""
    return display_name(text).replace("$", r"\$")
