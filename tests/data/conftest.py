"""Shared fixtures of the data tests."""

import pytest

from reslearn.data import decode as decode_module


@pytest.fixture
def count_decodes(monkeypatch):
    """``count_decodes()`` starts counting decoded files: a list that gets each decoded chunk's
    length from then on (a cache hit decodes nothing)."""

    def start() -> list[int]:
        calls: list[int] = []
        real = decode_module._decode_chunk

        def counting(paths, size):
            calls.append(len(paths))
            return real(paths, size)

        monkeypatch.setattr(decode_module, "_decode_chunk", counting)
        return calls

    return start
