"""``reslearn reproduce``: one of the paper's experiments in one command, with a report."""

from __future__ import annotations

import argparse
import sys
import textwrap
from pathlib import Path
from typing import TYPE_CHECKING

from reslearn.choices import BUDGETS, DEVICES, EXPERIMENTS, LAUNCHERS, PRECISIONS
from reslearn.commands.arguments import paragraph
from reslearn.train.recipes import RECIPES

if TYPE_CHECKING:
    from reslearn.experiments import Experiment, ExperimentSettings
    from reslearn.experiments.base import Launcher


def _weights_pair(text: str) -> tuple[str, str]:
    name, sep, path = text.partition("=")
    if not sep or not name or not path:
        raise argparse.ArgumentTypeError(
            f"expected NAME=FILE, e.g. resnet56=model.safetensors; got {text!r}"
        )
    return name.strip(), path.strip()


#: the shipped networks ``--pretrained`` takes: the laptop suite's seed 0, one recipe for all
SHIPPED_SUITE = "{model}-cifar10-laptop"


def _settings(args: argparse.Namespace, experiment: Experiment) -> ExperimentSettings:
    """The flags as settings (the mapping is ExperimentSettings.from_flags')."""
    from reslearn.experiments import ExperimentSettings

    flags = vars(args) | {"weights": _with_pretrained(args, experiment)}
    return ExperimentSettings.from_flags(flags, default_seeds=experiment.default_seeds)


def _with_pretrained(args: argparse.Namespace, experiment: Experiment) -> list | None:
    """``--weights`` with, under ``--pretrained``, each network of the experiment that
    reslearn ships (``reslearn:MODEL-cifar10-laptop``) that --weights does not give."""
    if not args.pretrained:
        return args.weights
    from reslearn.experiments.networks import NetworkExperiment
    from reslearn.hub.pretrained import cards

    if not isinstance(experiment, NetworkExperiment):
        raise ValueError(
            f"--pretrained measures shipped networks; {experiment.name} trains its own (it is "
            "for responses, landscape, lesion and gradients)"
        )
    given = dict(args.weights or [])
    shipped = set(cards())
    taken, trained = {}, []
    for model in args.models or experiment.default_models:
        if model in given:
            continue
        name = SHIPPED_SUITE.format(model=model)
        if name in shipped:
            taken[model] = f"reslearn:{name}"
        else:
            trained.append(model)
    if trained:
        print(f"--pretrained: reslearn ships no {', '.join(trained)} (reslearn models "
              "--pretrained lists what it ships); trained here", file=sys.stderr)  # fmt: skip
    return list(given.items()) + list(taken.items())


def run(args: argparse.Namespace) -> int:
    """Run (or continue) the experiment and print its tables and claims."""
    if args.list:
        for name, description in EXPERIMENTS.items():
            print(f"{name}\n{textwrap.indent(textwrap.fill(description, 76), '    ')}")
        return 0
    if args.experiment is None:
        raise ValueError(f"name an experiment: {', '.join(EXPERIMENTS)} (or --list)")
    # imported only now, so that --list and a missing name answer without loading torch
    from reslearn.experiments import get_experiment, run_experiment
    from reslearn.experiments.report_page import write_experiment_report
    from reslearn.train import TrainingStopped

    experiment = get_experiment(args.experiment)
    settings = _settings(args, experiment)
    for flag, value in (("--iterations", args.iterations), ("--max-images", args.max_images)):
        if value is not None and value < 1:
            raise ValueError(f"{flag} must be a positive number; got {value}")
    out = Path(args.out or Path("experiments") / args.experiment)
    launcher = _launcher(args)  # before any training: a missing submitit or sbatch says so now
    try:
        results = run_experiment(
            experiment, settings, out, quiet=args.quiet, command=sys.argv,
            draw=write_experiment_report, launcher=launcher,
        )  # fmt: skip
    except TrainingStopped as stop:
        print(f"reslearn reproduce: {stop}", file=sys.stderr)
        if stop.exit_code != 1:
            print(
                "  finished runs are kept; run the same command again to continue (the "
                "interrupted run resumes from its last checkpoint)",
                file=sys.stderr,
            )
        return stop.exit_code
    _print_results(experiment, results, out)
    return 0


def _print_results(experiment: Experiment, results: dict, out: Path) -> None:
    """The experiment's tables, its claims checked, and where the report is."""
    from reslearn.experiments.base import REPORT_FILE
    from reslearn.experiments.common import yes_no
    from reslearn.report.tables import format_table

    for table in experiment.tables(results):
        print(f"\n{table.caption}\n{format_table(table.header, table.rows)}")
    claims = results.get("claims") or []
    if claims:
        rows = [(c["claim"], c.get("verdict") or yes_no(c["holds"]), c["evidence"]) for c in claims]
        print(f"\nPublished claims, checked\n{format_table(('claim', 'holds', 'ours'), rows)}")
    print(f"\nreport: {out / REPORT_FILE}")


def _description() -> str:
    """The help page's paragraph, wrapped to the terminal."""
    return paragraph(
        "Train every network an experiment needs into OUT/runs/ (finished runs are reused "
        "and an interrupted one resumes, so the command can be stopped and run again), "
        "then write OUT/results.json (every number, with its settings) and OUT/report.html "
        "(figures, tables beside the paper's numbers, budget, hardware, versions, the "
        "command). The paper's budget is 64,000 iterations per network; --iterations N "
        "runs a shorter schedule with the learning-rate drops scaled, and the report "
        "says so."
    )


def _epilog() -> str:
    """The experiments, one a line, and examples."""
    listing = "\n".join(f"  {name:<12} {text}" for name, text in EXPERIMENTS.items())
    return (
        "experiments:\n" + listing + "\n\nexamples (data: cifar10, a folder, ...):\n"
        "  reslearn reproduce cifar --budget laptop --seeds 0   the CIFAR section on a laptop\n"
        "  reslearn reproduce cifar --budget paper --seeds 0 1 2  the paper's budget (a GPU)\n"
        "  reslearn reproduce degradation --iterations 2000    about an hour on a 2-core CPU\n"
        "  reslearn reproduce table6 --seeds 0 1 2 3 4          the paper's budget (a GPU)\n"
        "  reslearn reproduce table6 --val-split 5000           the paper's 45k/5k split\n"
        "  reslearn reproduce responses --weights resnet56=runs/r56/model.safetensors\n"
        "  reslearn reproduce shortcuts --depths 32 --iterations 8000\n"
        "  reslearn reproduce landscape --models resnet20 --weights \\\n"
        "      resnet20=reslearn:resnet20-cifar10            the shipped ResNet-20's landscape\n"
        "  reslearn reproduce lesion --models resnet56 --weights \\\n"
        "      resnet56=reslearn:resnet56-cifar10            delete its blocks at test time\n"
        "  reslearn reproduce lesion --pretrained --data data/cifar10-jpeg\n"
        "                          the shipped plain and residual networks of every depth\n"
        "  reslearn reproduce gradients --models resnet20 plain20 --iterations 2000\n"
    )


def register(commands: argparse._SubParsersAction) -> None:
    """Add the ``reproduce`` subcommand."""
    parser = commands.add_parser(
        "reproduce",
        help="run an experiment: the paper's (degradation, table6, responses, shortcuts), "
        "antialias or pooling",
        description=_description(),
        epilog=_epilog(),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    _what_and_where(parser)
    _budget(parser.add_argument_group("budget and recipe"))
    _networks(parser.add_argument_group("which networks"))
    _device_and_data(parser.add_argument_group("device and data"))
    _launcher_flags(parser.add_argument_group("in parallel (the runs are independent)"))
    parser.set_defaults(func=run)


def _what_and_where(parser: argparse.ArgumentParser) -> None:
    """The experiment, the data, the folder and the output."""
    parser.add_argument("experiment", nargs="?", choices=list(EXPERIMENTS), metavar="EXPERIMENT")
    parser.add_argument("--list", action="store_true", help="list the experiments and exit")
    parser.add_argument(
        "--data",
        default="cifar10",
        metavar="SPEC",
        help="data set, as for 'reslearn train' (cifar10)",
    )
    parser.add_argument("--out", metavar="DIR", help="experiment folder (experiments/EXPERIMENT)")
    parser.add_argument("--quiet", action="store_true", help="log lines instead of progress bars")


def _budget(budget: argparse._ArgumentGroup) -> None:
    """How long each network trains, with which recipe and seeds."""
    budget.add_argument(
        "--budget",
        choices=list(BUDGETS),
        help="a named recipe and length: paper (Sec. 4.2 exactly, 64,000 iterations; a GPU's) "
        "or laptop (10 epochs of the fast recipe, where a 2-core CPU decides the CIFAR claims)",
    )
    budget.add_argument("--recipe", choices=list(RECIPES), help="training recipe (paper)")
    budget.add_argument(
        "--iterations", type=int, metavar="N", help="SGD steps per network (the recipe's: 64000)"
    )
    budget.add_argument(
        "--seeds", type=int, nargs="+", metavar="S", help="seeds (table6: 0 1 2; others: 0)"
    )
    budget.add_argument("--batch-size", type=int, metavar="B", help="images per step (128)")
    budget.add_argument(
        "--eval-every",
        type=int,
        metavar="N",
        help="test-set evaluations every N steps (budgeted: at most 10 per run, at least "
        "100 steps apart)",
    )
    budget.add_argument(
        "--val-split",
        type=int,
        default=0,
        metavar="N",
        help="hold out N training images (the paper: 5000)",
    )


def _networks(which: argparse._ArgumentGroup) -> None:
    """The depths, the networks measured and weights given instead of training."""
    which.add_argument("--depths", type=int, nargs="+", metavar="D", help="CIFAR depths (6n+2)")
    which.add_argument(
        "--models", nargs="+", metavar="NAME",
        help="responses, landscape, lesion, gradients: networks to measure",
    )  # fmt: skip
    which.add_argument(
        "--weights", type=_weights_pair, action="append", metavar="NAME=FILE",
        help="responses, landscape, lesion, gradients: measure this file (or reslearn:NAME) "
        "instead of training NAME; repeatable",
    )  # fmt: skip
    which.add_argument(
        "--pretrained", action="store_true",
        help="responses, landscape, lesion, gradients: measure the networks reslearn ships "
        "(the laptop suite's seed 0, reslearn:MODEL-cifar10-laptop, trained on the shared "
        "CIFAR-10 JPEG copy) instead of training them; the others train",
    )  # fmt: skip
    which.add_argument(
        "--max-images",
        type=int,
        metavar="N",
        help="responses, antialias, landscape, lesion, gradients: a random sample of N test "
        "images",
    )
    which.add_argument(
        "--grid", type=int, metavar="N",
        help="landscape: the 2-D grid is N x N points, N odd (21; the paper's 51)",
    )  # fmt: skip
    which.add_argument(
        "--subset", type=int, metavar="N",
        help="landscape: the loss on a seeded sample of N training images (2000)",
    )  # fmt: skip


def _device_and_data(speed: argparse._ArgumentGroup) -> None:
    """Where to train, in which precision, and how the data is decoded."""
    speed.add_argument("--device", choices=DEVICES, default="auto", help="where to train (auto)")
    speed.add_argument(
        "--precision",
        choices=PRECISIONS,
        default="auto",
        help="training precision (auto: measured per network; see 'reslearn train --help')",
    )
    speed.add_argument("--cache-dir", metavar="DIR", help="decoded-array cache (~/.cache/reslearn)")
    speed.add_argument("--workers", type=int, metavar="N", help="decoding processes")


def _launcher_flags(parallel: argparse._ArgumentGroup) -> None:
    """Where the runs train: here one after the other, as processes, or as SLURM jobs."""
    parallel.add_argument(
        "--launcher", choices=LAUNCHERS, default="inline",
        help="inline: here, one run after the other; local: --jobs processes on this machine "
        "(a GPU each where there are several, else the CPU threads split); slurm: one SLURM "
        "job per run through submitit (pip install 'reslearn[cluster]')",
    )  # fmt: skip
    parallel.add_argument(
        "--jobs", type=int, metavar="N",
        help="runs at once (local: the GPUs, or 2; slurm: all)",
    )  # fmt: skip
    parallel.add_argument("--partition", metavar="NAME", help="slurm: the partition")
    parallel.add_argument(
        "--time", type=int, default=240, metavar="MIN", help="slurm: minutes per job (240)"
    )
    parallel.add_argument(
        "--gpus-per-job", type=int, default=1, metavar="N", help="slurm: GPUs per job (1)"
    )
    parallel.add_argument(
        "--cpus-per-job", type=int, default=8, metavar="N", help="slurm: CPUs per job (8)"
    )


def _launcher(args: argparse.Namespace) -> Launcher | None:
    """The --launcher flags as a launcher (None: inline); refused in one line when wrong."""
    if args.launcher == "inline":
        if args.jobs is not None:
            raise ValueError("--jobs needs --launcher local or slurm")
        return None
    from reslearn.experiments.launch import LocalLauncher, SlurmLauncher

    if args.launcher == "local":
        return LocalLauncher(jobs=args.jobs)
    return SlurmLauncher(
        jobs=args.jobs, partition=args.partition, time_minutes=args.time,
        gpus_per_job=args.gpus_per_job, cpus_per_job=args.cpus_per_job,
    )  # fmt: skip
