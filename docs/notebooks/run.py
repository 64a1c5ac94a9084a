"""Execute a notebook of docs/notebooks top to bottom and store its outputs, with parameters.

The cell tagged ``parameters`` keeps its defaults; each ``--set NAME=VALUE`` is appended to it
(marked as set by this script), so a stored notebook shows exactly what it ran with. Needs the
notebooks extra: ``pip install 'reslearn[notebooks]'``.

    python docs/notebooks/run.py docs/notebooks/residual-learning.ipynb --set DATA=data/cifar10-jpeg
    python docs/notebooks/run.py docs/notebooks/your-own-images.ipynb --out /tmp/run.ipynb
"""

from __future__ import annotations

import argparse
import ast
import sys
from pathlib import Path
from typing import Any

PARAMETERS_TAG = "parameters"


def parse_setting(text: str) -> tuple[str, Any]:
    """``NAME=VALUE`` as (NAME, the Python literal VALUE, or VALUE as a string)."""
    name, sep, value = text.partition("=")
    if not sep or not name.isidentifier():
        raise ValueError(f"--set takes NAME=VALUE; got {text!r}")
    try:
        return name, ast.literal_eval(value)
    except (ValueError, SyntaxError):
        return name, value


def execute(
    notebook: str | Path,
    parameters: dict[str, Any] | None = None,
    *,
    out: str | Path | None = None,
    timeout: int = 1800,
) -> Path:
    """Run ``notebook`` with ``parameters`` set after its parameters cell, in its own folder;
    write it with its outputs to ``out`` (default: in place) and return that path. A cell that
    raises stops the run with nbclient's CellExecutionError, naming the cell."""
    import nbformat
    from nbclient import NotebookClient

    path = Path(notebook)
    book = nbformat.read(path, as_version=4)
    if parameters:
        cells = [c for c in book.cells if PARAMETERS_TAG in c.metadata.get("tags", [])]
        if len(cells) != 1:
            raise ValueError(f"{path} needs one cell tagged {PARAMETERS_TAG!r}; found {len(cells)}")
        lines = [f"{name} = {value!r}" for name, value in parameters.items()]
        cells[0].source = "\n".join([cells[0].source, "# set by docs/notebooks/run.py", *lines])
    client = NotebookClient(
        book, timeout=timeout, kernel_name="python3",
        resources={"metadata": {"path": str(path.resolve().parent)}},
    )  # fmt: skip
    client.execute()
    target = Path(out) if out is not None else path
    nbformat.write(book, target)
    return target


def main(argv: list[str] | None = None) -> int:
    """The command line: run one notebook, store its outputs."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("notebook", type=Path)
    parser.add_argument("--set", action="append", default=[], metavar="NAME=VALUE",
                        help="a parameter (a Python literal, else a string); repeatable")
    parser.add_argument("--out", type=Path, help="where to write the executed notebook (in place)")
    parser.add_argument("--timeout", type=int, default=1800, help="seconds per cell (1800)")
    args = parser.parse_args(argv)
    try:
        parameters = dict(parse_setting(text) for text in args.set)
        target = execute(args.notebook, parameters, out=args.out, timeout=args.timeout)
    except (ValueError, OSError) as error:
        print(f"run.py: {error}", file=sys.stderr)
        return 2
    print(f"executed {args.notebook} -> {target}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
