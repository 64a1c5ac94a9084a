"""reslearn's version, as installed (a source tree that was not installed says so)."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("reslearn")
except PackageNotFoundError:  # running from a source tree that was not installed
    __version__ = "0.0.0+unknown"
