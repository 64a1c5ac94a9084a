"""Ship a finished run as one of reslearn's pretrained networks: its weights copied into
src/reslearn/hub/pretrained/NAME.safetensors, evaluated with ``reslearn eval`` (fp32, the run's
test split), and its model card written beside them (NAME.json and NAME.md).

    python docs/ship_pretrained.py runs/pretrained/resnet20-cifar10 resnet20-cifar10
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import io
import json
import shlex
import shutil
from datetime import date
from pathlib import Path

from reslearn.cli import main as reslearn
from reslearn.rundir import WEIGHTS, read_config, read_summary

FOLDER = Path(__file__).resolve().parents[1] / "src" / "reslearn" / "hub" / "pretrained"


def evaluate(run: Path) -> dict:
    """``reslearn eval RUN --precision fp32 --json``, as a user would run it."""
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        code = reslearn(["eval", str(run), "--precision", "fp32", "--json", "--device", "cpu",
                         "--out", str(run / "ship-confusion.png")])  # fmt: skip
    if code != 0:
        raise SystemExit(f"reslearn eval {run} failed ({code})")
    return json.loads(out.getvalue())


def card(run: Path, name: str, evaluation: dict, sha256: str) -> dict:
    """The model card's facts, from the run's own records."""
    config = read_config(run, needs=("settings", "resolved", "data", "environment"))
    summary = read_summary(run) or {}
    environment, resolved = config["environment"], config["resolved"]
    command = environment.get("command") or []
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
        "command": shlex.join(["reslearn", *command[1:]]),
        "test_error": evaluation["top1_error"],
        "test_top5_error": evaluation["top5_error"],
        "test_images": evaluation["count"],
        "evaluated_with": f"reslearn eval reslearn:{name} --data {config['settings']['data']} "
        "--precision fp32",
        "train_seconds": summary.get("train_seconds"),
        "machine": f"{environment['device_name']} ({environment['threads']} threads)",
        "torch": environment["torch"],
        "git_revision": environment.get("git_revision"),
        "date": date.today().isoformat(),
        "sha256": sha256,
        "license": "the same as reslearn's",
    }


def markdown(facts: dict) -> str:
    """The card for people."""
    minutes = facts["train_seconds"] / 60 if facts["train_seconds"] else float("nan")
    return f"""# reslearn:{facts["name"]}

{facts["model"]} trained by reslearn on {facts["data"]}: {facts["data_note"]}.

| | |
|---|---|
| test error (top-1 / top-5) | {100 * facts["test_error"]:.2f}% / {100 * facts["test_top5_error"]:.2f}% on {facts["test_images"]:,} test images |
| recipe | {facts["recipe"]}: {facts["iterations"]:,} iterations ({facts["epochs"]} epochs), {facts["precision"]} |
| training time | {minutes:.1f} min on {facts["machine"]}, torch {facts["torch"]} |
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
    args = parser.parse_args()
    evaluation = evaluate(args.run)
    target = FOLDER / f"{args.name}.safetensors"
    shutil.copyfile(args.run / WEIGHTS, target)
    sha256 = hashlib.sha256(target.read_bytes()).hexdigest()
    facts = card(args.run, args.name, evaluation, sha256)
    (FOLDER / f"{args.name}.json").write_text(json.dumps(facts, indent=2) + "\n")
    (FOLDER / f"{args.name}.md").write_text(markdown(facts))
    print(f"{target}: test error {100 * facts['test_error']:.2f}%")


if __name__ == "__main__":
    main()
