"""Helpers the experiments share: model names by depth, means over seeds, number formats,
and the Fig. 6-style curves of an experiment's runs."""

from __future__ import annotations

import statistics
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from reslearn.models import model_info
from reslearn.train.metrics import read_metrics

CIFAR_DEPTHS = (20, 32, 44, 56, 110, 1202)


def cifar_model(family: str, depth: int) -> str:
    """``plain56`` / ``resnet56``, refusing depths the zoo does not have."""
    name = f"{family}{depth}"
    try:
        info = model_info(name)
    except ValueError:
        info = None
    if info is None or info.family != "cifar":
        have = [d for d in CIFAR_DEPTHS if _exists(f"{family}{d}")]
        raise ValueError(
            f"no CIFAR {family} network of depth {depth}; depths: {', '.join(map(str, have))}"
        )
    return name


def _exists(name: str) -> bool:
    try:
        model_info(name)
    except ValueError:
        return False
    return True


def mean_std(values: Iterable[float | None]) -> tuple[float | None, float | None, int]:
    """Mean, sample standard deviation (None for one value) and count, skipping missing."""
    present = [v for v in values if v is not None]
    if not present:
        return None, None, 0
    std = statistics.stdev(present) if len(present) > 1 else None
    return statistics.fmean(present), std, len(present)


def percent(value: float | None, std: float | None = None) -> str:
    """0.0875 -> "8.75", with "± 0.16" when a standard deviation is given; "-" when missing."""
    if value is None:
        return "-"
    text = f"{100 * value:.2f}"
    return text if std is None else f"{text} ± {100 * std:.2f}"


def machine_label(run: dict[str, Any]) -> str:
    """Where a run trained: the device's name, and a CPU's family and model where recorded."""
    name = run.get("device_name") or "-"
    return f"{name} ({run['cpu_family']})" if run.get("cpu_family") else name


def yes_no(holds: bool) -> str:
    """The verdict cell of a claims table."""
    return "yes" if holds else "no"


def runs_where(records: Sequence[dict], **labels: Any) -> list[dict]:
    """The run records whose labels match every given value."""
    return [r for r in records if all(r.get(k) == v for k, v in labels.items())]


def load_curves(root: Path, records: Sequence[dict], label: str) -> list[tuple[str, list]]:
    """(label, metrics records) for each run record, label formatted from its fields."""
    return [
        (label.format(**r), read_metrics(root / r["run_dir"] / "metrics.jsonl")) for r in records
    ]


def claim(text: str, holds: bool, evidence: str) -> dict[str, Any]:
    """One of the paper's statements, checked against our numbers."""
    return {"claim": text, "holds": bool(holds), "evidence": evidence}
