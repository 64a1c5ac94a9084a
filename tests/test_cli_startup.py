"""Issue 18: the command line answers help and argument errors without loading the heavy
libraries. Importing torch alone takes seconds on a small CPU, so the guard is what is imported,
not a clock: ``reslearn --help``, every ``reslearn COMMAND --help`` and a usage error run in a
fresh interpreter, which must then hold none of the modules below. The torch-free tables the
parsers read (``reslearn.choices``) are checked against the registries they mirror."""

import importlib
import json
import subprocess
import sys
import textwrap

import pytest

HEAVY = ("torch", "numpy", "matplotlib", "PIL", "safetensors", "tqdm")

# Prints {"exits": {argv: exit code}, "heavy": [heavy modules loaded]} as JSON.
_PROBE = textwrap.dedent(
    """
    import argparse, contextlib, io, json, sys
    from reslearn.cli import build_parser, main

    parser = build_parser()
    (commands,) = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    argvs = [["--help"], ["--version"], [], ["train", "--epochs", "x"], ["nope"]]
    argvs += [[name, "--help"] for name in commands.choices]
    exits = {}
    for argv in argvs:
        with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
            try:
                code = main(argv)
            except SystemExit as stop:
                code = stop.code
        exits[" ".join(argv)] = code
    heavy = [name for name in HEAVY if name in sys.modules]
    print(json.dumps({"exits": exits, "heavy": heavy}))
    """
)


def _probe(code: str) -> dict:
    """Run ``code`` (which prints one JSON line) in a fresh interpreter; its parsed output."""
    result = subprocess.run(
        [sys.executable, "-c", f"HEAVY = {HEAVY!r}\n{code}"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout.splitlines()[-1])


@pytest.mark.subprocess
def test_help_and_usage_errors_import_no_heavy_library() -> None:
    probe = _probe(_PROBE)
    exits = probe["exits"]
    assert exits["--help"] == exits["--version"] == exits["train --help"] == 0
    assert exits[""] == exits["train --epochs x"] == exits["nope"] == 2
    assert all(code == 0 for argv, code in exits.items() if argv.endswith(" --help")), exits
    assert "reproduce --help" in exits and "cam --help" in exits  # every command was asked
    assert probe["heavy"] == [], f"loaded while parsing: {probe['heavy']}"


@pytest.mark.subprocess
def test_importing_the_package_imports_no_heavy_library() -> None:
    code = "import reslearn, sys, json; print(json.dumps([m for m in HEAVY if m in sys.modules]))"
    assert _probe(code) == []


@pytest.mark.parametrize("package", ["reslearn", "reslearn.train"])
def test_a_lazy_package_imports_each_public_name_when_used(package: str) -> None:
    module = importlib.import_module(package)
    for name in module.__all__:
        assert getattr(module, name) is not None, name
    assert set(module.__all__) <= set(dir(module))
    with pytest.raises(AttributeError, match=f"'{package}' has no attribute 'nothing'"):
        module.nothing  # noqa: B018


def test_the_package_api_is_the_library_s() -> None:
    import reslearn
    from reslearn.hub import load_pretrained
    from reslearn.models import ResNet, create_model, list_models

    assert reslearn.create_model is create_model and reslearn.ResNet is ResNet
    assert reslearn.list_models is list_models and reslearn.load_pretrained is load_pretrained


def test_model_names_are_the_registry() -> None:
    from reslearn.choices import MODEL_NAMES
    from reslearn.models import list_models

    assert MODEL_NAMES == tuple(list_models())


def test_experiment_table_is_the_experiments() -> None:
    from reslearn.choices import EXPERIMENTS as TABLE
    from reslearn.experiments import EXPERIMENTS

    described = {name: e.description for name, e in EXPERIMENTS.items()}
    assert list(TABLE.items()) == list(described.items())
