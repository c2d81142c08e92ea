"""Fixtures shared by both layers of tests."""

from __future__ import annotations

import uuid
from collections.abc import Callable

import pytest


@pytest.fixture
def unique_name() -> Callable[[str], str]:
    """Random topic, group and subject names, so that tests never see each other's data."""

    def make(prefix: str) -> str:
        return f"test.{prefix}.{uuid.uuid4().hex[:10]}"

    return make
