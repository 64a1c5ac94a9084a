"""The ``reslearn`` subcommands, one module each; every module has ``register(commands)``."""

from reslearn.commands import (
    cam,
    convert,
    evaluate,
    explore,
    export,
    models,
    predict,
    report,
    reproduce,
    shift,
    train,
)

#: Registered in this order; ``reslearn --help`` lists them the same way.
COMMANDS = (
    train,
    models,
    evaluate,
    predict,
    export,
    convert,
    reproduce,
    report,
    cam,
    shift,
    explore,
)
