"""Plain-text tables for the terminal and for README."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from reslearn.models.complexity import ModelProfile, StageProfile


def format_count(n: int) -> str:
    """A large count in engineering units: 40.81 M, 1.81 G."""
    for unit, scale in (("G", 1e9), ("M", 1e6), ("K", 1e3)):
        if abs(n) >= scale:
            return f"{n / scale:.2f} {unit}"
    return str(n)


def _looks_numeric(cell: str) -> bool:
    """'269,722', '3.86 G', '64 x 56 x 56' and '-' (no value) align right."""
    return cell == "-" or cell.split(" ")[0].replace(",", "").replace(".", "").isdigit()


def format_table(header: Sequence[str], rows: Iterable[Sequence[str]]) -> str:
    """Columns padded to their widest cell; text left-aligned, numbers right-aligned."""
    rows = [list(map(str, r)) for r in rows]
    widths = [max(len(c) for c in col) for col in zip(header, *rows)]
    numeric = [all(map(_looks_numeric, col)) for col in zip(*rows)] or [False] * len(header)

    def line(cells: Sequence[str]) -> str:
        return "  ".join(
            c.rjust(w) if num else c.ljust(w) for c, w, num in zip(cells, widths, numeric)
        ).rstrip()

    rule = "  ".join("-" * w for w in widths)
    return "\n".join([line(header), rule, *map(line, rows)])


def model_table(profiles: Iterable[ModelProfile]) -> str:
    """The model zoo as a table: one row per model, measured parameters and multiply-adds."""
    header = (
        "name",
        "family",
        "depth",
        "block",
        "shortcut",
        "layout",
        "params",
        "mult-adds",
        "input",
    )
    rows = [
        (
            p.name,
            p.family,
            str(p.depth),
            p.block,
            p.shortcut,
            p.layout,
            f"{p.parameters:,}",
            format_count(p.macs),
            f"{p.input_size}x{p.input_size}",
        )
        for p in profiles
    ]
    return format_table(header, rows)


def stage_table(stages: Iterable[StageProfile]) -> str:
    """One network stage by stage: blocks, output shape, parameters and multiply-adds.

    ``layer1`` ... ``layer4`` are the paper's conv2_x ... conv5_x.
    """
    header = ("stage", "blocks", "output", "params", "mult-adds")
    rows = [
        (
            s.stage,
            str(s.blocks) if s.blocks else "-",
            " x ".join(map(str, s.output_shape)),
            f"{s.parameters:,}",
            format_count(s.macs),
        )
        for s in stages
    ]
    return format_table(header, rows)


def network_label(m: Mapping[str, Any]) -> str:
    """A network's name as the paper writes it, from its ``family`` and ``depth``: "plain-56",
    "ResNet-56"."""
    return f"{'plain' if m['family'] == 'plain' else 'ResNet'}-{m['depth']}"
