"""Shared test settings: small thread count and deterministic seeds keep the suite fast and
repeatable on a 2-core machine."""

import pytest
import torch


@pytest.fixture(autouse=True)
def _seed() -> None:
    torch.manual_seed(0)
