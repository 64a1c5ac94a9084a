"""``reslearn models``: the model zoo with measured parameters and multiply-adds."""

from __future__ import annotations

import argparse
import json

from reslearn.commands.arguments import count, paragraph, parse_option


def run(args: argparse.Namespace) -> int:
    """Print the zoo table, the per-stage tables or JSON."""
    from reslearn.models import list_models, profile_model
    from reslearn.report import model_table, stage_table

    if args.pretrained:
        return _pretrained(args)
    names = args.names or list_models(args.family)
    options = dict(args.set)
    profiles = [
        profile_model(n, input_size=args.input_size, stages=args.stages, **options) for n in names
    ]
    if args.json:
        print(json.dumps([p.as_dict() for p in profiles], indent=2))
    elif args.stages:
        print("\n\n".join(f"{model_table([p])}\n\n{stage_table(p.stages)}" for p in profiles))
    else:
        print(model_table(profiles))
    return 0


def _pretrained(args: argparse.Namespace) -> int:
    """The networks shipped with reslearn, with the errors their model cards record."""
    from reslearn.hub.pretrained import cards
    from reslearn.report import format_table

    found = cards()
    if args.json:
        print(json.dumps({name: card.facts for name, card in found.items()}, indent=2))
        return 0
    rows = [
        (f"reslearn:{name}", c.network, c.facts["data"],
         f"{100 * c.facts['test_error']:.2f}%", _training(c.facts), c.facts["machine"])
        for name, c in found.items()
    ]  # fmt: skip
    print(format_table(("name", "model", "data", "test error", "training", "trained on"), rows))
    print("\nuse anywhere weights go: reslearn predict reslearn:NAME img.jpg, --init "
          "reslearn:NAME; Python: reslearn.load_pretrained(NAME); model cards: "
          "reslearn/hub/pretrained/NAME.md")  # fmt: skip
    return 0


def _training(facts: dict) -> str:
    """The card's recipe and length: ``fast, 10 epochs (laptop budget)``."""
    budget = f" ({facts['budget']} budget)" if facts.get("budget") else ""
    return f"{facts['recipe']}, {facts['epochs']:g} epochs{budget}"


def register(commands: argparse._SubParsersAction) -> None:
    """Add the ``models`` subcommand."""
    models = commands.add_parser(
        "models",
        help="list the model zoo with measured parameters and multiply-adds",
        description=paragraph(
            "List the paper's networks with their parameters (counted on the built model) and "
            "multiply-adds for one image at the native input size (counted with "
            "torch.utils.flop_counter; 1 multiply-add = 2 FLOPs). CIFAR networks (Sec. 4.2) "
            "take 32x32 inputs and default to shortcut option A; ImageNet networks (Table 1) "
            "take 224x224 and default to option B with the stride of a bottleneck on its first "
            "1x1 conv (layout v1, as in the paper; stride_in_1x1=false gives torchvision's "
            "v1.5). Plain networks (shortcut 'none') are the paper's controls."
        ),
        epilog="examples:\n"
        "  reslearn models                          the whole zoo\n"
        "  reslearn models --family imagenet --json\n"
        "  reslearn models resnet50 --set stride_in_1x1=false   torchvision's layout\n"
        "  reslearn models resnet20 --set shortcut=B            projection shortcuts\n"
        "  reslearn models resnet34 --stages                    Table 1, measured",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    models.add_argument("names", nargs="*", metavar="NAME", help="models to show (default: all)")
    models.add_argument("--family", choices=("cifar", "imagenet"), help="show one family only")
    models.add_argument("--json", action="store_true", help="print JSON instead of a table")
    models.add_argument(
        "--pretrained",
        action="store_true",
        help="list the trained networks shipped with reslearn (reslearn:NAME) and their errors",
    )
    models.add_argument(
        "--stages",
        action="store_true",
        help="also show each model stage by stage (output shape, parameters, multiply-adds; "
        "layer1..layer4 are the paper's conv2_x..conv5_x)",
    )
    models.add_argument(
        "--input-size",
        type=count,
        metavar="PX",
        help="count multiply-adds at PX x PX instead of the native size",
    )
    models.add_argument(
        "--set",
        action="append",
        type=parse_option,
        default=[],
        metavar="KEY=VALUE",
        help="a model option (num_classes, in_channels, shortcut, stride_in_1x1, "
        "zero_init_residual, antialias, zero_pad, pool, map_size); repeatable",
    )
    models.set_defaults(func=run)
