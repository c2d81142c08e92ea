"""`oms config` shows the effective settings and never a secret."""

from __future__ import annotations

from pydantic import SecretStr

from ops.settings_view import HIDDEN, settings_rows
from topology.settings import Settings


def test_every_setting_is_shown_with_its_source_and_secrets_are_hidden() -> None:
    settings = Settings(kafka_sasl_password=SecretStr("hunter2"), commit_interval_s=0.5)
    environ = {"OMS_KAFKA_SASL_PASSWORD": "hunter2", "OMS_COMMIT_INTERVAL_S": "0.5"}

    rows = {name: (value, source) for name, value, source in settings_rows(settings, environ)}

    assert set(rows) == {f"OMS_{field.upper()}" for field in Settings.model_fields} | {
        "OMS_INSTANCE_ID",
        "OMS_CONFIG",
        "OMS_PROFILE",
    }
    assert rows["OMS_KAFKA_SASL_PASSWORD"] == (HIDDEN, "environment")
    assert rows["OMS_COMMIT_INTERVAL_S"] == ("0.5", "environment")
    assert rows["OMS_KAFKA_BOOTSTRAP_SERVERS"] == ("127.0.0.1:9092", "default")
    assert rows["OMS_KAFKA_SASL_USERNAME"] == ("unset", "default")
    assert all("hunter2" not in value for value, _ in rows.values())
