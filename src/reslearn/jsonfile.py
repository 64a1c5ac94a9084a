"""Reading reslearn's own JSON files (config.json, summary.json, results.json, ...) so that a
damaged one is named: a file cut short by a crash or a full disk, or broken by hand-editing,
raises a one-line ``UserError`` with its path instead of a bare "Expecting value: line 1"."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from reslearn.errors import UserError, one_line


def read_json(path: str | os.PathLike, *, fix: str = "restore it from a copy or delete it") -> Any:
    """The JSON value in ``path``. A missing or unreadable file raises the usual OSError (which
    names it); a file that is not valid UTF-8 JSON raises UserError naming it, with ``fix``."""
    path = Path(path)
    try:
        return json.loads(path.read_bytes().decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        size = path.stat().st_size
        what = "empty" if size == 0 else f"not valid JSON ({one_line(error)})"
        raise UserError(f"'{path}' is damaged: {what}; {fix}") from None


def read_json_record(path: str | os.PathLike, keys: tuple[str, ...], *, fix: str) -> dict:
    """``read_json`` of a file that must hold a JSON object with ``keys`` (each an object)."""
    record = read_json(path, fix=fix)
    if not isinstance(record, dict):
        record = {}
    missing = [k for k in keys if not isinstance(record.get(k), dict)]
    if missing:
        raise UserError(f"'{path}' is damaged: it has no {', '.join(missing)} record; {fix}")
    return record
