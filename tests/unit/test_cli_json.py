"""`--json` on the listing commands: what a script gets, with the command's exit status kept. The reads of
Kafka are replaced by what they would return, so that no broker is needed."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from ops import reachability, stock
from ops.cli import build_parser, main
from processors.services import STREAM_PROCESSORS
from topology import admin
from topology.drift import ActualTopic, TopicComparison, TopicStatus
from topology.settings import get_settings
from topology.topics import ORDERS_COMMANDS, ORDERS_EVENTS

LISTINGS = [
    ["status"],
    ["config"],
    ["profiles"],
    ["processors"],
    ["deploy"],
    ["topics", "list"],
    ["topics", "apply"],
    ["schemas", "check"],
    ["schemas", "register"],
    ["timers"],
    ["stock", "show"],
    ["slips"],
    ["slips", "parked"],
    ["sagas"],
    ["dlq", "list", "oms.orders.commands"],
    ["track", "o-1"],
    ["replay", "group", "oms.payments"],
]


@pytest.mark.parametrize("words", LISTINGS, ids=" ".join)
def test_every_listing_and_status_command_takes_json(words: list[str]) -> None:
    assert build_parser().parse_args([*words, "--json"]).json is True


@pytest.fixture(autouse=True)
def fresh_settings() -> Iterator[None]:
    """`main` caches the settings it read; the next test reads its own environment's."""
    yield
    get_settings.cache_clear()


@pytest.fixture
def broker_answers(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(reachability, "require", lambda settings, needs: None)


def test_topics_list_json_gives_each_topic_and_exits_1_on_drift(
    broker_answers: None, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    drifted = TopicComparison(
        ORDERS_COMMANDS,
        ActualTopic(partitions=2, replication_factor=1, config={"cleanup.policy": "delete"}),
        TopicStatus.DRIFTED,
        ("partitions: declared 4, actual 2",),
    )
    missing = TopicComparison(ORDERS_EVENTS, None, TopicStatus.MISSING)
    monkeypatch.setattr(admin, "inspect", lambda settings, declared: [drifted, missing])

    assert main(["topics", "list", "--json"]) == 1

    rows = json.loads(capsys.readouterr().out)
    assert rows[0] == {
        "topic": ORDERS_COMMANDS.name,
        "declared": {"partitions": ORDERS_COMMANDS.partitions, "cleanup_policy": "delete"},
        "actual": {"partitions": 2, "replication_factor": 1, "cleanup_policy": "delete"},
        "status": str(TopicStatus.DRIFTED),
        "differences": ["partitions: declared 4, actual 2"],
    }
    assert rows[1]["actual"] is None and rows[1]["status"] == str(TopicStatus.MISSING)


def test_stock_show_json_names_each_sku_and_its_product(
    broker_answers: None, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(stock, "read_stock", lambda settings: {"NOT-IN-CATALOG": 3})

    assert main(["stock", "show", "--json"]) == 0

    assert json.loads(capsys.readouterr().out) == [{"sku": "NOT-IN-CATALOG", "available": 3, "product": None}]


def test_processors_json_lists_every_declared_processor(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["processors", "--json"]) == 0

    rows = json.loads(capsys.readouterr().out)
    assert [row["processor"] for row in rows] == [spec.name for spec in STREAM_PROCESSORS]
    assert all(row["reads"] and row["group"] for row in rows)


def test_config_json_gives_each_setting_with_its_source(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("OMS_COMMIT_INTERVAL_S", "0.5")
    monkeypatch.delenv("OMS_PROFILE", raising=False)
    monkeypatch.setenv("OMS_CONFIG", "")

    assert main(["config", "--json"]) == 0

    rows = {row["variable"]: row for row in json.loads(capsys.readouterr().out)}
    assert rows["OMS_COMMIT_INTERVAL_S"] == {
        "variable": "OMS_COMMIT_INTERVAL_S",
        "value": "0.5",
        "source": "environment",
    }
    assert rows["OMS_KAFKA_SASL_PASSWORD"]["value"] == "unset"


def test_profiles_json_lists_each_profile_where_it_points_and_which_is_in_use_without_secrets(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    config = tmp_path / "config.toml"
    config.write_text(
        '[profiles.prod]\nkafka_bootstrap_servers = "b-1:9093"\nkafka_sasl_password = "hunter2"\n'
        '[profiles.staging]\nschema_registry_url = "https://registry.staging"\n'
    )
    monkeypatch.setenv("OMS_CONFIG", str(config))
    monkeypatch.setenv("OMS_PROFILE", "prod")

    assert main(["profiles", "--json"]) == 0

    out = capsys.readouterr().out
    assert json.loads(out) == {
        "config": str(config),
        "profiles": [
            {
                "profile": "prod",
                "in_use": True,
                "kafka_bootstrap_servers": "b-1:9093",
                "schema_registry_url": None,
            },
            {
                "profile": "staging",
                "in_use": False,
                "kafka_bootstrap_servers": None,
                "schema_registry_url": "https://registry.staging",
            },
        ],
    }
    assert "hunter2" not in out
