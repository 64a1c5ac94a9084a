"""Execute a notebook of docs/notebooks top to bottom and store its outputs, with parameters.

The cell tagged ``parameters`` keeps its defaults; each ``--set NAME=VALUE`` is appended to it
(marked as set by this script), so a stored notebook shows exactly what it ran with; a NAME that
the cell does not assign is refused. Everything that can be checked is checked before a cell
runs (the file is a notebook, the parameters are its own, the output can be written); a cell
that raises is one line naming it, and the notebook as far as it ran is still written. Needs
the notebooks extra: ``pip install 'reslearn[notebooks]'``.

    python docs/notebooks/run.py docs/notebooks/residual-learning.ipynb --set DATA=data/cifar10-jpeg
    python docs/notebooks/run.py docs/notebooks/your-own-images.ipynb --out /tmp/run.ipynb
"""

from __future__ import annotations

import argparse
import ast
import json
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


class CellFailed(RuntimeError):
    """A cell raised; the notebook, executed up to it, was written to ``target``."""

    def __init__(self, message: str, target: Path) -> None:
        super().__init__(message)
        self.target = target


def read_notebook(path: Path) -> Any:
    """``path`` as an nbformat 4 notebook; a file that is not a notebook (not JSON, JSON of
    another shape, a notebook that breaks the format) is refused in one line."""
    import nbformat

    try:
        text = path.read_text(encoding="utf-8")
        data = json.loads(text)
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise ValueError(f"{path} is not a notebook: it is not JSON ({error})") from None
    if not (isinstance(data, dict) and isinstance(data.get("cells"), list)
            and isinstance(data.get("nbformat"), int)):  # fmt: skip
        raise ValueError(f"{path} is not a notebook: it has no 'cells' list and 'nbformat'")
    invalid: dict[str, Any] = {}
    try:
        book = nbformat.reads(text, as_version=4, capture_validation_error=invalid)
    except Exception as error:  # nbformat's reader raises what the shape it meets provokes
        raise ValueError(f"{path} is not a valid notebook: {_one_line(error)}") from None
    if invalid:
        message = getattr(invalid["ValidationError"], "message", invalid["ValidationError"])
        raise ValueError(f"{path} is not a valid notebook: {_one_line(message)}")
    return book


def parameter_names(source: str) -> list[str]:
    """The names a parameters cell assigns at its top level, in order."""
    names: list[str] = []
    for node in ast.parse(source).body:
        targets = node.targets if isinstance(node, ast.Assign) else [getattr(node, "target", None)]
        for target in targets:
            for name in ast.walk(target) if target is not None else ():
                if isinstance(name, ast.Name) and name.id not in names:
                    names.append(name.id)
    return names


def set_parameters(book: Any, path: Path, parameters: dict[str, Any]) -> None:
    """Append ``parameters`` to the cell tagged ``parameters``, refusing names it has not."""
    cells = [c for c in book.cells if PARAMETERS_TAG in c.metadata.get("tags", [])]
    if len(cells) != 1:
        raise ValueError(f"{path} needs one cell tagged {PARAMETERS_TAG!r}; found {len(cells)}")
    known = parameter_names(cells[0].source)
    unknown = [name for name in parameters if name not in known]
    if unknown:
        raise ValueError(
            f"{path} has no parameter {', '.join(unknown)}; its parameters: "
            f"{', '.join(known) or 'none'}"
        )
    lines = [f"{name} = {value!r}" for name, value in parameters.items()]
    cells[0].source = "\n".join([cells[0].source, "# set by docs/notebooks/run.py", *lines])


def execute(
    notebook: str | Path,
    parameters: dict[str, Any] | None = None,
    *,
    out: str | Path | None = None,
    timeout: int = 1800,
) -> Path:
    """Run ``notebook`` with ``parameters`` set after its parameters cell, in its own folder;
    write it with its outputs to ``out`` (default: in place; missing folders are made) and
    return that path. Refused before any cell runs (ValueError, OSError): a file that is not a
    notebook, a parameter it has not, an output that cannot be written. A cell that raises
    stops the run with ``CellFailed`` (its number and error), the notebook written as far as
    it ran."""
    import nbformat
    from nbclient import NotebookClient
    from nbclient.exceptions import CellExecutionError

    from reslearn.atomic import atomic_write, check_writable

    path = Path(notebook)
    target = Path(out) if out is not None else path
    book = read_notebook(path)
    if parameters:
        set_parameters(book, path, parameters)
    if target.is_dir():
        raise ValueError(f"--out {target} is a folder; give a file name such as run.ipynb")
    check_writable(target)
    client = NotebookClient(
        book, timeout=timeout, kernel_name="python3",
        resources={"metadata": {"path": str(path.resolve().parent)}},
    )  # fmt: skip
    failed = None
    try:
        client.execute()
    except CellExecutionError as error:
        failed = error
    atomic_write(target, lambda file: file.write(nbformat.writes(book).encode("utf-8")))
    if failed is not None:
        number = next(
            (n for n, cell in enumerate(book.cells, 1)
             if any(o.get("output_type") == "error" for o in cell.get("outputs", []))),
            "?",
        )  # fmt: skip
        raise CellFailed(
            f"cell {number} raised {failed.ename}: {_one_line(failed.evalue)}; the notebook, "
            f"executed up to it, is in {target}",
            target,
        )
    return target


def _one_line(text: object) -> str:
    return " ".join(str(text).split())


def main(argv: list[str] | None = None) -> int:
    """The command line: run one notebook, store its outputs."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("notebook", type=Path)
    parser.add_argument(
        "--set", action="append", default=[], metavar="NAME=VALUE",
        help="a parameter (a Python literal, else a string); repeatable",
    )  # fmt: skip
    parser.add_argument("--out", type=Path, help="where to write the executed notebook (in place)")
    parser.add_argument("--timeout", type=int, default=1800, help="seconds per cell (1800)")
    args = parser.parse_args(argv)
    try:
        parameters = dict(parse_setting(text) for text in args.set)
        target = execute(args.notebook, parameters, out=args.out, timeout=args.timeout)
    except (ValueError, OSError) as error:
        print(f"run.py: {_one_line(error)}", file=sys.stderr)
        return 2
    except CellFailed as error:
        print(f"run.py: {error}", file=sys.stderr)
        return 1
    print(f"executed {args.notebook} -> {target}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
