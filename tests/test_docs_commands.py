"""README.md and docs/*.md say what the code does: their commands parse and run, their Python runs,
their tables and links are current.

The conventions (written for readers in docs/design.md, "The documentation is tested"):

- Every ``reslearn`` command in a fenced shell block (bash, sh, shell) is parsed with
  ``reslearn.cli.build_parser()``: a documented command or flag that no longer exists fails with
  the file and line. A command is a line starting with ``reslearn``, or what follows ``-m
  reslearn`` (``python -m reslearn``, ``torchrun ... -m reslearn``). A line ending in ``\\``
  continues; ``#`` starts a comment; ``NAME=value`` lines set variables that ``$NAME`` expands;
  leading ``NAME=value`` words (``OMP_NUM_THREADS=1 reslearn ...``) are the environment; a lone
  ``...`` ("the rest, as above") is dropped. ``$ reslearn ...`` lines of text blocks (shown
  output) are parsed too.
- A block runs unless the line before it says why not: ``<!-- needs: gpu -->``,
  ``<!-- needs: imagenet -->``, ``<!-- needs: network -->`` or ``<!-- not run: REASON -->``.
  Marked blocks are only parsed; an unmarked block holds only reslearn commands and variables.
- README's tour runs here (fast), step by step in one fresh folder, through
  ``reslearn.cli.main``; each step must exit 0 and write the files the README names after it
  ("It writes `...`"; a ``*`` matches like a shell glob). The docs pages' unmarked blocks run in
  the ``slow`` test, page after page in one folder of their own, in ``ORDER``.
- THE SUBSTITUTION, the same for every run (README says it in one sentence): the folder
  ``data/cifar10-jpeg`` is a tiny copy of the same layout (``TINY``: the ten CIFAR-10 classes,
  16 training and 4 test 32x32 JPEGs each, ``NNNN.jpg``), and every ``train`` and ``reproduce``
  command runs ``--iterations 20 --batch-size 16`` in place of its ``--epochs``,
  ``--iterations`` or ``--batch-size`` (not with ``--resume``, which takes no new settings).
"""

from __future__ import annotations

import argparse
import contextlib
import io
import re
import shlex
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from reslearn.cli import build_parser, main

pytestmark = pytest.mark.trains  # runs the trainer (pytest -m "not trains" leaves it out)

ROOT = Path(__file__).resolve().parents[1]
#: The pages in the order their blocks run (a page may use a run an earlier one trained).
ORDER = ["README.md"] + [
    f"docs/{name}.md"
    for name in "training data reproducing analysis models imagenet speed reliability python-api "
    "design".split()
]
PAGES = ORDER + sorted(
    p.relative_to(ROOT).as_posix() for p in (ROOT / "docs").glob("*.md") if
    p.relative_to(ROOT).as_posix() not in ORDER
)  # fmt: skip

SHELL = ("bash", "sh", "shell")
NEEDS = ("gpu", "imagenet", "network")
TINY = {"classes": ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse",
                    "ship", "truck"], "train": 16, "test": 4, "size": 32}  # fmt: skip
SUBSTITUTED = {"--epochs", "--iterations", "--batch-size"}
TINY_BUDGET = ["--iterations", "20", "--batch-size", "16"]


@dataclass
class Block:
    page: str
    line: int  # the opening fence, 1-based
    language: str
    lines: list[tuple[int, str]]
    marker: str | None  # "needs: gpu", "not run: ...", or None
    after: str = ""  # the text up to the next fenced block


@dataclass
class Command:
    page: str
    line: int
    argv: list[str]  # after "reslearn"
    env: dict[str, str] = field(default_factory=dict)

    @property
    def where(self) -> str:
        return f"{self.page}:{self.line}"


def read_blocks(page: str) -> list[Block]:
    """The fenced blocks of ``page`` (fences at the start of a line), with their markers."""
    lines = (ROOT / page).read_text().splitlines()
    blocks: list[Block] = []
    current: Block | None = None
    for number, text in enumerate(lines, 1):
        if text.startswith("```"):
            if current is None:
                before = [t for t in lines[: number - 1] if t.strip()][-1:] or [""]
                found = re.fullmatch(r"<!--\s*((?:needs|not run):.*?)\s*-->", before[0].strip())
                marker = " ".join(found.group(1).split()) if found else None
                current = Block(page, number, text[3:].strip(), [], marker)
            else:
                blocks.append(current)
                current = None
        elif current is not None:
            current.lines.append((number, text))
        elif blocks:
            blocks[-1].after += text + "\n"
    return blocks


def _logical_lines(block: Block) -> list[tuple[int, str]]:
    """Lines with ``\\`` continuations joined, each with its first line's number."""
    joined: list[tuple[int, str]] = []
    pending: tuple[int, str] | None = None
    for number, text in block.lines:
        if pending is not None:
            number, text = pending[0], pending[1] + " " + text
        if text.rstrip().endswith("\\"):
            pending = (number, text.rstrip()[:-1])
            continue
        pending = None
        joined.append((number, text))
    return joined


def _expand(word: str, variables: dict[str, str]) -> str:
    return re.sub(r"\$\{?(\w+)\}?", lambda m: variables.get(m.group(1), m.group(0)), word)


def read_commands(block: Block) -> tuple[list[Command], list[tuple[int, str]]]:
    """The reslearn commands of a block, and its other (non-variable) lines."""
    commands, others, variables = [], [], {}
    for number, text in _logical_lines(block):
        if block.language == "text":
            if text.startswith("$ reslearn "):
                words = shlex.split(text[2:], comments=True)
                commands.append(Command(block.page, number, words[1:]))
            continue
        words = [_expand(w, variables) for w in shlex.split(text, comments=True)]
        if not words:
            continue
        env = {}
        while words and re.fullmatch(r"\w+=.*", words[0]):
            key, value = words.pop(0).split("=", 1)
            env[key] = value
        if not words:  # NAME=value: a shell variable
            variables.update(env)
            continue
        words = [w for w in words if w != "..."]
        if words[0] == "reslearn":
            commands.append(Command(block.page, number, words[1:], env))
        elif "-m" in words and words[words.index("-m") + 1 :][:1] == ["reslearn"]:
            commands.append(Command(block.page, number, words[words.index("-m") + 2 :], env))
        else:
            others.append((number, text.strip()))
    return commands, others


def shell_blocks(pages=PAGES) -> list[Block]:
    return [b for p in pages for b in read_blocks(p) if b.language in SHELL]


def all_commands() -> list[Command]:
    return [
        c
        for p in PAGES
        for b in read_blocks(p)
        if b.language in SHELL + ("text",)
        for c in read_commands(b)[0]
    ]


def _parses(argv: list[str]) -> str | None:
    """None when ``reslearn ARGV`` parses (or asks for help), else what argparse said."""
    errors = io.StringIO()
    with contextlib.redirect_stderr(errors), contextlib.redirect_stdout(io.StringIO()):
        try:
            build_parser().parse_args(argv)
        except SystemExit as stop:
            if stop.code not in (0, None):
                return errors.getvalue().strip() or f"exit {stop.code}"
    return None


# -- (a) every documented command parses; blocks say why they do not run ----------------------


def test_the_pages_hold_commands() -> None:
    commands = all_commands()
    assert len(commands) > 40
    assert {c.page for c in commands} >= {"README.md", "docs/training.md", "docs/analysis.md"}


@pytest.mark.parametrize("command", all_commands(), ids=lambda c: c.where)
def test_documented_command_parses(command: Command) -> None:
    problem = _parses(command.argv)
    if problem:
        pytest.fail(f"{command.where}: `reslearn {shlex.join(command.argv)}` does not parse: "
                    f"{problem}")  # fmt: skip


def test_blocks_run_or_say_why_not() -> None:
    problems = []
    for block in shell_blocks():
        where = f"{block.page}:{block.line}"
        if block.marker is None:
            problems += [f"{block.page}:{n}: `{t}` is not a reslearn command; mark the block "
                         "(<!-- needs: ... --> or <!-- not run: REASON -->) or move it out"
                         for n, t in read_commands(block)[1]]  # fmt: skip
        elif block.marker.startswith("needs:"):
            if block.marker.split(":", 1)[1].strip() not in NEEDS:
                problems.append(f"{where}: unknown marker '{block.marker}'; needs: {NEEDS}")
        elif not block.marker.split(":", 1)[1].strip():
            problems.append(f"{where}: 'not run:' needs a reason")
    assert not problems, "\n".join(problems)


def test_a_bad_command_is_caught() -> None:
    """The parse check is not vacuous: a flag that does not exist fails."""
    assert _parses(["train", "--no-such-flag"])
    assert _parses(["frobnicate"])
    assert _parses(["train", "--help"]) is None


# -- (b) README's tour runs on tiny data -------------------------------------------------------


def write_tiny_cifar(root: Path) -> Path:
    """``root/data/cifar10-jpeg/{train,test}/<class>/NNNN.jpg`` as in ``TINY``: noise with a
    class colour, so a network can learn something in 20 steps."""
    rng = np.random.default_rng(0)
    for split in ("train", "test"):
        for label, name in enumerate(TINY["classes"]):
            folder = root / "data" / "cifar10-jpeg" / split / name
            folder.mkdir(parents=True)
            for i in range(TINY[split]):
                pixels = rng.integers(0, 120, (TINY["size"], TINY["size"], 3), dtype=np.uint8)
                pixels[..., label % 3] += 40 + 12 * label
                Image.fromarray(pixels).save(folder / f"{i:04d}.jpg", quality=90)
    return root


def substitute(argv: list[str]) -> list[str]:
    """THE SUBSTITUTION (see the module docstring) for one command."""
    if not argv or argv[0] not in ("train", "reproduce") or "--resume" in argv or "--list" in argv:
        return list(argv)
    kept, skip = [], False
    for word in argv:
        if skip:
            skip = False
        elif word in SUBSTITUTED:
            skip = True
        else:
            kept.append(word)
    return kept + TINY_BUDGET


def run_documented(command: Command) -> None:
    argv = substitute(command.argv)
    try:
        code = main(argv)
    except SystemExit as stop:
        code = stop.code
    assert code == 0, f"{command.where}: `reslearn {shlex.join(argv)}` exited with {code}"


def _tour_steps() -> list[tuple[Block, list[Command]]]:
    text = (ROOT / "README.md").read_text()
    start = text.index("## A tour in six commands")
    end = text.index("\n## ", start + 1)
    first, last = text[:start].count("\n") + 1, text[:end].count("\n") + 1
    steps: list[tuple[Block, list[Command]]] = []
    for block in read_blocks("README.md"):
        if not first <= block.line <= last:
            continue
        if block.language in SHELL and block.marker is None:
            steps.append((block, read_commands(block)[0]))
        elif steps:  # shown output: what follows it still belongs to the step before
            steps[-1][0].after += block.after
    return steps


def written_files(block: Block) -> list[str]:
    """What the README says a step writes: the path-like `...` after "It writes"."""
    paragraphs = re.findall(r"It writes (.*?)(?:\n\n|$)", block.after, flags=re.S)
    names = [n for p in paragraphs for n in re.findall(r"`([^`\s]+)`", p)]
    return [n for n in names if "/" in n or "." in n]


TOUR = _tour_steps()


def test_the_tour_is_found() -> None:
    names = [commands[0].argv[0] for _, commands in TOUR]
    assert names == ["train", "eval", "predict", "cam", "explore", "reproduce"]
    assert "runs/tour/model.safetensors" in written_files(TOUR[0][0])


@pytest.fixture(scope="module")
def tour_folder(tmp_path_factory) -> Path:
    return write_tiny_cifar(tmp_path_factory.mktemp("tour"))


@pytest.mark.parametrize(
    "step", range(len(TOUR)), ids=[f"{i + 1}-{c[0].argv[0]}" for i, (_, c) in enumerate(TOUR)]
)
def test_tour_step(step: int, tour_folder: Path, monkeypatch) -> None:
    block, commands = TOUR[step]
    if commands[0].argv[0] not in _command_names():
        pytest.skip(f"`reslearn {commands[0].argv[0]}` is not a command yet; this step runs "
                    "once it lands")  # fmt: skip
    monkeypatch.chdir(tour_folder)
    for command in commands:
        run_documented(command)
    for name in written_files(block):
        assert list(tour_folder.glob(name)), f"README.md:{block.line}: no {name} was written"


def _command_names() -> set[str]:
    parser = build_parser()
    (action,) = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    return set(action.choices)


# -- (c) every other runnable block of the docs, on the same tiny data (slow) -----------------


@pytest.fixture(scope="module")
def docs_folder(tmp_path_factory) -> Path:
    return write_tiny_cifar(tmp_path_factory.mktemp("docs"))


@pytest.mark.slow
@pytest.mark.parametrize("page", [p for p in PAGES if p != "README.md"])  # README: the tour above
def test_page_commands_run(page: str, docs_folder: Path, monkeypatch) -> None:
    monkeypatch.chdir(docs_folder)
    names = _command_names()
    for block in read_blocks(page):
        if block.language not in SHELL or block.marker is not None:
            continue
        for command in read_commands(block)[0]:
            if command.argv[0] in names:  # a command still being built is only parsed
                run_documented(command)


# -- Python blocks, tables, layers, links -----------------------------------------------------


PYTHON = [
    (page, block) for page in PAGES for block in read_blocks(page) if block.language == "python"
]


@pytest.mark.parametrize("page, block", PYTHON, ids=[f"{p}:{b.line}" for p, b in PYTHON])
def test_python_examples_run(page: str, block: Block) -> None:
    source = "\n" * block.line + "\n".join(t for _, t in block.lines)  # line numbers match
    exec(compile(source, str(ROOT / page), "exec"), {})


def _block_after(page: str, marker: str) -> str:
    return (ROOT / page).read_text().split(marker, 1)[1].split("```text\n", 1)[1].split("```")[0]


def _output(argv: list[str], capsys) -> str:
    capsys.readouterr()
    assert main(argv) == 0
    return capsys.readouterr().out


@pytest.mark.slow
def test_model_table_is_current(capsys) -> None:
    table = _block_after("docs/models.md", "<!-- output of `reslearn models`")
    assert table.strip() == _output(["models"], capsys).strip()


def test_stage_table_is_current(capsys) -> None:
    text = (ROOT / "docs/models.md").read_text()
    table = text.split("$ reslearn models resnet50 --stages\n", 1)[1].split("```", 1)[0]
    assert table.strip() == _output(["models", "resnet50", "--stages"], capsys).strip()


def test_layers_are_current() -> None:
    tomllib = pytest.importorskip("tomllib", reason="tomllib is Python 3.11's")
    contract = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["importlinter"]
    layers = next(c for c in contract["contracts"] if c["type"] == "layers")["layers"]
    written = _block_after("docs/design.md", "<!-- the layers of pyproject.toml")
    assert written.strip().splitlines() == layers


def test_the_two_commands_are_what_ci_runs() -> None:
    readme = (ROOT / "README.md").read_text()
    ci = (ROOT / ".ci" / "run").read_text()
    assert "make test" in readme and "make run" in readme
    assert ci.strip().splitlines()[-1] == "make test"
    assert len(readme.splitlines()) <= 260, "README is the newcomer's path: keep it short"


def _slug(heading: str) -> str:
    """GitHub's anchor for a heading."""
    text = heading.strip().lower().replace("`", "")
    return re.sub(r"[^\w\- ]", "", text).replace(" ", "-")


def _anchors(path: Path) -> set[str]:
    text = re.sub(r"^```.*?^```", "", path.read_text(), flags=re.S | re.M)
    return {_slug(h) for h in re.findall(r"^#+ (.*)$", text, flags=re.M)}


def test_links_point_at_what_exists() -> None:
    problems = []
    for page in PAGES:
        text = re.sub(r"^```.*?^```", "", (ROOT / page).read_text(), flags=re.S | re.M)
        for target in re.findall(r"\]\(([^)\s]+)\)", text):
            if re.match(r"[a-z]+:", target):
                continue
            name, _, anchor = target.partition("#")
            path = (ROOT / page).parent / name if name else ROOT / page
            if not path.exists():
                problems.append(f"{page}: link to {target}: no such file")
            elif anchor and path.suffix == ".md" and anchor not in _anchors(path):
                problems.append(f"{page}: link to {target}: no such heading")
    assert not problems, "\n".join(problems)
