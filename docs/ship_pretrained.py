"""Ship a finished run as one of reslearn's pretrained networks: its weights copied into
src/reslearn/hub/pretrained/NAME.safetensors, evaluated with ``reslearn eval`` (fp32, the run's
test split), and its model card written beside them (NAME.json and NAME.md). A run of an
experiment (``results/cifar-laptop/runs/resnet56-s0``) records the experiment's budget and seed.

    python docs/ship_pretrained.py runs/pretrained/resnet20-cifar10 resnet20-cifar10
    python docs/ship_pretrained.py results/cifar-laptop/runs/resnet56-s0 resnet56-cifar10-laptop \
        --note "the training time includes about 40 minutes paused for other measurements"
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import io
import json
import shlex
import shutil
import tempfile
from datetime import date
from pathlib import Path

from reslearn.cli import main as reslearn
from reslearn.hub.pretrained import Card
from reslearn.rundir import WEIGHTS, read_config, read_summary

FOLDER = Path(__file__).resolve().parents[1] / "src" / "reslearn" / "hub" / "pretrained"


def evaluate(run: Path) -> dict:
    """``reslearn eval RUN --precision fp32 --json``, as a user would run it."""
    out = io.StringIO()
    # the confusion picture goes to a scratch folder: the run folder stays as training left it
    with tempfile.TemporaryDirectory() as scratch, contextlib.redirect_stdout(out):
        code = reslearn(["eval", str(run), "--precision", "fp32", "--json", "--device", "cpu",
                         "--out", str(Path(scratch) / "confusion.png")])  # fmt: skip
    if code != 0:
        raise SystemExit(f"reslearn eval {run} failed ({code})")
    return json.loads(out.getvalue())


def experiment_of(run: Path) -> dict:
    """The settings of the experiment whose ``runs/`` folder holds ``run`` ({} for a lone run)."""
    record = run.parent.parent / "experiment.json"
    if run.parent.name != "runs" or not record.is_file():
        return {}
    return json.loads(record.read_text()).get("settings") or {}


def card(
    run: Path,
    name: str,
    evaluation: dict,
    sha256: str,
    note: str | None = None,
    cpu_family: str | None = None,
) -> dict:
    """The model card's facts, from the run's own records."""
    config = read_config(run, needs=("settings", "resolved", "data", "environment"))
    summary = read_summary(run) or {}
    environment, resolved = config["environment"], config["resolved"]
    command = environment.get("command") or []
    experiment = experiment_of(run)
    return {
        "name": name,
        "model": resolved["model"],
        "model_options": resolved["model_options"],
        "data": config["data"]["name"],
        "data_note": "CIFAR-10 as 32x32 JPEG files (quality 75) from the project's shared data; "
        "errors sit a few points above those on the original pixels",
        "recipe": resolved["recipe"],
        "iterations": resolved["iterations"],
        "epochs": round(resolved["epochs"], 2),
        "precision": resolved["precision"],
        "budget": experiment.get("budget"),
        "seed": resolved["seed"],
        "command": shlex.join(["reslearn", *command[1:]]),
        "test_error": evaluation["top1_error"],
        "test_top5_error": evaluation["top5_error"],
        "test_images": evaluation["count"],
        "evaluated_with": f"reslearn eval reslearn:{name} --data {config['settings']['data']} "
        "--precision fp32",
        "train_seconds": summary.get("train_seconds"),
        "machine": f"{environment['device_name']} ({environment['threads']} threads)",
        "cpu_family": environment.get("cpu_family") or cpu_family,
        "note": note,
        "torch": environment["torch"],
        "git_revision": environment.get("git_revision"),
        "date": date.today().isoformat(),
        "sha256": sha256,
        "license": "the same as reslearn's",
    }


def markdown(facts: dict) -> str:
    """The card for people."""
    minutes = facts["train_seconds"] / 60 if facts["train_seconds"] else float("nan")
    budget = f", the {facts['budget']} budget" if facts.get("budget") else ""
    family = f", {facts['cpu_family']}" if facts.get("cpu_family") else ""
    note = f" ({facts['note']})" if facts.get("note") else ""
    model = Card(facts["name"], facts).network
    return f"""# reslearn:{facts["name"]}

{model} trained by reslearn on {facts["data"]}: {facts["data_note"]}.

| | |
|---|---|
| test error (top-1 / top-5) | {100 * facts["test_error"]:.2f}% / {100 * facts["test_top5_error"]:.2f}% on {facts["test_images"]:,} test images |
| recipe | {facts["recipe"]}{budget}: {facts["iterations"]:,} iterations ({facts["epochs"]} epochs), {facts["precision"]}, seed {facts["seed"]} |
| training time | {minutes:.1f} min{note} on {facts["machine"]}{family}, torch {facts["torch"]} |
| trained with | `{facts["command"]}` |
| measured with | `{facts["evaluated_with"]}` |
| weights | {facts["name"]}.safetensors, fp32, sha256 {facts["sha256"]} |
| source revision | {facts["git_revision"]} ({facts["date"]}) |

Use: `reslearn predict reslearn:{facts["name"]} cat.jpg`, `--init reslearn:{facts["name"]}`,
`reslearn.load_pretrained("{facts["name"]}")`.
"""  # noqa: E501


def main() -> None:
    """Copy, evaluate, write the card."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("run", type=Path)
    parser.add_argument("name")
    parser.add_argument("--note", help="a fact the card should say about the training time")
    parser.add_argument(
        "--cpu-family",
        help="the CPU's lscpu family and model ('family 25 model 1') for a run trained before "
        "runs recorded it (from that session's notes)",
    )
    args = parser.parse_args()
    evaluation = evaluate(args.run)
    target = FOLDER / f"{args.name}.safetensors"
    shutil.copyfile(args.run / WEIGHTS, target)
    sha256 = hashlib.sha256(target.read_bytes()).hexdigest()
    facts = card(args.run, args.name, evaluation, sha256, args.note, args.cpu_family)
    (FOLDER / f"{args.name}.json").write_text(json.dumps(facts, indent=2) + "\n")
    (FOLDER / f"{args.name}.md").write_text(markdown(facts))
    print(f"{target}: test error {100 * facts['test_error']:.2f}%")


if __name__ == "__main__":
    main()
