"""The lesion study's claims and tables, from its measured networks (results.json's
``lesions``), beside Veit et al.'s published result (``paper.LESION``)."""

from __future__ import annotations

import statistics
from typing import Any

from reslearn.experiments import paper
from reslearn.experiments.base import Table
from reslearn.experiments.common import claim, percent
from reslearn.report.tables import network_label

#: "Almost unchanged": the median change, in points of test error, of deleting one block.
UNCHANGED_POINTS = 2.0
#: "Smoothly": the mean error never falls by more than this many points from one k to the next,
#: and no single step makes more than half of the whole rise.
SMOOTH_DIP_POINTS = 1.0


def paper_statements() -> dict[str, str]:
    """What Veit et al. found, as the report quotes it (results.json's ``paper``)."""
    where = f"Veit et al. 2016 ({paper.LESION['network']})"
    return {key: f"{where}: {paper.LESION[key]}." for key in ("single_block", "plain", "k_curve")}


def single_changes(m: dict[str, Any]) -> list[float]:
    """Points of test error that deleting each non-downsampling block alone adds."""
    return [
        100 * (b["error"] - m["whole_error"])
        for b in m["blocks"]
        if b["deletable"] and not b["downsampling"]
    ]


def claims(measured: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Veit et al.'s statements, checked on each network (and each depth measured both ways)."""
    found = []
    for m in measured:
        changes = single_changes(m)
        if not changes:
            continue
        if m["family"] == "resnet":
            found.append(_unchanged(m, changes))
            if len(m["k_curve"]) >= 2:
                found.append(_smooth(m))
        else:
            found.append(_toward_chance(m))
    by_name = {m["model"]: m for m in measured}
    for m in measured:
        plain = by_name.get(f"plain{m['depth']}")
        if m["family"] == "resnet" and plain is not None and single_changes(plain):
            ours, theirs = (statistics.median(single_changes(x)) for x in (m, plain))
            found.append(claim(
                f"Deleting one block hurts {network_label(m)} less than {network_label(plain)}",
                ours < theirs, f"median change {ours:+.1f} vs {theirs:+.1f} points",
            ))  # fmt: skip
    return found


def _unchanged(m: dict[str, Any], changes: list[float]) -> dict[str, Any]:
    median = statistics.median(changes)
    return claim(
        f"Deleting one non-downsampling block of {network_label(m)} leaves its error almost "
        f"unchanged (median change under {UNCHANGED_POINTS:g} points)",
        median < UNCHANGED_POINTS,
        f"at most {max(changes):+.1f} points (median {median:+.1f}) over {len(changes)} "
        f"blocks; whole network {percent(m['whole_error'])}%",
    )


def _toward_chance(m: dict[str, Any]) -> dict[str, Any]:
    errors = [b["error"] for b in m["blocks"] if b["deletable"]]
    median, whole, chance = statistics.median(errors), m["whole_error"], m["chance_error"]
    return claim(
        f"Deleting one block of {network_label(m)} sends it toward chance (median error past "
        "halfway from the whole network's to chance)",
        median >= whole + (chance - whole) / 2,
        f"median {percent(median)}% ({percent(min(errors))} to {percent(max(errors))}) over "
        f"{len(errors)} blocks; whole {percent(whole)}%, chance {percent(chance)}% (Veit et "
        f"al.'s VGG: about {paper.LESION['plain_error']:g}%)",
    )


def _smooth(m: dict[str, Any]) -> dict[str, Any]:
    means = [100 * point["mean"] for point in m["k_curve"]]
    steps = [b - a for a, b in zip(means, means[1:])]
    rise = means[-1] - means[0]
    holds = min(steps) >= -SMOOTH_DIP_POINTS and (
        len(steps) < 2 or rise > 0 and max(steps) <= rise / 2
    )
    return claim(
        f"{network_label(m)}'s error rises smoothly with the number k of blocks deleted",
        holds,
        f"mean {means[0]:.1f}% at k = 1 to {means[-1]:.1f}% at k = {len(means)}; steps "
        f"{min(steps):+.1f} to {max(steps):+.1f} points",
    )


def tables(measured: list[dict[str, Any]]) -> list[Table]:
    """Ours beside the paper's, each network's summary, the error per block and per k."""
    if not measured:
        return []
    return [_beside_paper(measured), _summary(measured), _per_block(measured), _per_k(measured)]


def _beside_paper(measured: list[dict[str, Any]]) -> Table:
    resnets = [m for m in measured if m["family"] == "resnet" and single_changes(m)]
    plains = [m for m in measured if m["family"] == "plain" and single_changes(m)]
    one_resnet = "; ".join(
        f"{network_label(m)}: median {statistics.median(single_changes(m)):+.1f}, at most "
        f"{max(single_changes(m)):+.1f} points" for m in resnets
    )  # fmt: skip
    one_plain = "; ".join(
        f"{network_label(m)}: median "
        f"{percent(statistics.median(b['error'] for b in m['blocks'] if b['deletable']))}% "
        f"(chance {percent(m['chance_error'])}%)" for m in plains
    )  # fmt: skip
    curves = "; ".join(
        f"{network_label(m)}: {percent(m['k_curve'][0]['mean'])}% at k = 1 to "
        f"{percent(m['k_curve'][-1]['mean'])}% at k = {m['k_curve'][-1]['k']}"
        for m in measured if m["family"] == "resnet" and m["k_curve"]
    )  # fmt: skip
    return Table(
        "Beside Veit et al. 2016: their findings, and ours with BN statistics as trained "
        "(nothing re-estimated after a deletion)",
        ("what is deleted", f"Veit et al. 2016 ({paper.LESION['network']})", "ours"),
        [
            ("one block of a ResNet (not downsampling)", paper.LESION["single_block"],
             one_resnet or "-"),
            ("one block of a plain network", paper.LESION["plain"], one_plain or "-"),
            ("k random blocks of a ResNet", paper.LESION["k_curve"], curves or "-"),
        ],  # fmt: skip
    )


def _summary(measured: list[dict[str, Any]]) -> Table:
    rows = []
    for m in measured:
        one = [b["error"] for b in m["blocks"] if b["deletable"] and not b["downsampling"]]
        down = [b["error"] for b in m["blocks"] if b["deletable"] and b["downsampling"]]
        last = m["k_curve"][-1] if m["k_curve"] else None
        rows.append((
            network_label(m), f"{m['deletable']} of {len(m['blocks'])}",
            percent(m["whole_error"]),
            percent(statistics.median(one)) if one else "-",
            f"{percent(min(one))} to {percent(max(one))}" if one else "-",
            " / ".join(percent(e) for e in down) or "-",
            f"{percent(last['mean'])} ({percent(last['min'])} to {percent(last['max'])}), "
            f"k = {last['k']}" if last else "-",
            percent(m["chance_error"]), f"{m['images']:,}",
        ))  # fmt: skip
    return Table(
        "Test error (%) of each network whole, with one non-downsampling block deleted (median "
        "and range over the blocks), with each downsampling block deleted (a plain network's "
        f"cannot be: its shape changes), and with n/2 random blocks deleted ({_draws(measured)} "
        "draws: mean, min to max)",
        ("network", "deletable blocks", "whole", "one block: median", "one block: range",
         "downsampling blocks", "n/2 blocks", "chance", "test images"),
        rows,
    )  # fmt: skip


def _per_block(measured: list[dict[str, Any]]) -> Table:
    places: dict[str, bool] = {}
    for m in measured:
        for b in m["blocks"]:
            places[b["label"]] = places.get(b["label"], False) or b["downsampling"]
    order = sorted(places, key=lambda label: tuple(map(int, label.split("."))))
    rows = []
    for label in order:
        cells = []
        for m in measured:
            block = next((b for b in m["blocks"] if b["label"] == label), None)
            if block is None:
                cells.append("")
            elif not block["deletable"]:
                cells.append("not deletable")
            else:
                cells.append(percent(block["error"]))
        rows.append((label + (" (downsampling)" if places[label] else ""), *cells))
    return Table(
        "Test error (%) with one block deleted, by stage.position; the whole network's is in "
        "the table above",
        ("block", *(network_label(m) for m in measured)),
        rows,
    )


def _per_k(measured: list[dict[str, Any]]) -> Table:
    longest = max((len(m["k_curve"]) for m in measured), default=0)
    rows = []
    for k in range(1, longest + 1):
        cells = []
        for m in measured:
            point = m["k_curve"][k - 1] if k <= len(m["k_curve"]) else None
            cells.append(
                f"{percent(point['mean'])} ({percent(point['min'])} to {percent(point['max'])})"
                if point else ""
            )  # fmt: skip
        rows.append((str(k), *cells))
    return Table(
        f"Test error (%) with k random deletable blocks deleted at once: mean (min to max) "
        f"over {_draws(measured)} seeded draws",
        ("k", *(network_label(m) for m in measured)),
        rows,
    )


def _draws(measured: list[dict[str, Any]]) -> int:
    return max((len(p["errors"]) for m in measured for p in m["k_curve"]), default=0)
