"""A processor's application is built again while a topic it just created is not yet known to the broker."""

from __future__ import annotations

from typing import cast

import pytest
from quixstreams import Application
from quixstreams.models.topics.exceptions import TopicNotFoundError

from processors.runtime.app import built


class _Builds:
    def __init__(self, failures: int) -> None:
        self.failures, self.calls = failures, 0
        self.app = cast(Application, object())

    def __call__(self) -> Application:
        self.calls += 1
        if self.calls <= self.failures:
            raise TopicNotFoundError('Topic "changelog__oms.intake--oms.orders.commands--default" not found')
        return self.app


def test_a_topic_not_yet_known_is_waited_for_by_building_again() -> None:
    builds = _Builds(failures=2)

    assert built(builds, tries=5, wait_s=0) is builds.app
    assert builds.calls == 3


def test_a_topic_that_never_appears_fails_the_start() -> None:
    builds = _Builds(failures=10)

    with pytest.raises(TopicNotFoundError):
        built(builds, tries=3, wait_s=0)
    assert builds.calls == 3
