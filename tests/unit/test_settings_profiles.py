"""Where each setting comes from: `oms`' flags over `OMS_` variables over the chosen profile over the defaults;
and the OIDC and librdkafka settings a profile or variable gives reaching every client's configuration."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from ops.cli import build_parser
from ops.connection_options import flag_environment
from ops.settings_view import HIDDEN, settings_rows
from processors.runtime.app import connection_and_extra
from topology.profiles import ConfigFileMissing, ProfileError, selected_profile
from topology.settings import KAFKA_CLIENT_LOGGER, load_settings

PROFILES = """
[profiles.prod]
kafka_bootstrap_servers = "prod-1:9093,prod-2:9093"
schema_registry_url = "https://registry.prod:8081"
kafka_security_protocol = "SASL_SSL"
order_partitions = 12

[profiles.prod.kafka_properties]
"client.rack" = "az1"
"socket.keepalive.enable" = "true"

[profiles.staging]
kafka_bootstrap_servers = "staging-1:9092"
"""


@pytest.fixture
def config(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A config file with two profiles, named by OMS_CONFIG; no other OMS_ variable set."""
    path = tmp_path / "config.toml"
    path.write_text(PROFILES)
    for name in ("OMS_KAFKA_BOOTSTRAP_SERVERS", "OMS_SCHEMA_REGISTRY_URL", "OMS_PROFILE", "OMS_KAFKA_PROPERTIES"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("OMS_CONFIG", str(path))
    return path


def test_without_a_profile_the_defaults_reach_the_local_platform(config: Path) -> None:
    settings = load_settings()

    assert settings.kafka_bootstrap_servers == "127.0.0.1:9092"
    assert settings.order_partitions == 4


def test_the_chosen_profile_overrides_the_defaults(config: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OMS_PROFILE", "prod")

    settings = load_settings()

    assert settings.kafka_bootstrap_servers == "prod-1:9093,prod-2:9093"
    assert settings.schema_registry_url == "https://registry.prod:8081"
    assert settings.order_partitions == 12
    assert settings.kafka_config()["client.rack"] == "az1"


def test_a_variable_overrides_the_profile_and_properties_merge_key_by_key(
    config: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OMS_PROFILE", "prod")
    monkeypatch.setenv("OMS_ORDER_PARTITIONS", "6")
    monkeypatch.setenv("OMS_KAFKA_PROPERTIES", json.dumps({"client.rack": "az2"}))

    settings = load_settings()

    assert settings.order_partitions == 6
    assert settings.kafka_bootstrap_servers == "prod-1:9093,prod-2:9093"
    assert settings.kafka_properties == {"client.rack": "az2", "socket.keepalive.enable": "true"}


def test_flags_override_variables_and_x_adds_to_their_properties(monkeypatch: pytest.MonkeyPatch) -> None:
    args = build_parser().parse_args(
        ["-b", "flag-1:9092", "-X", "client.rack=az3", "topics", "list", "--registry", "http://r:8081", "-X", "a=b"]
    )
    environ = {"OMS_KAFKA_BOOTSTRAP_SERVERS": "env-1:9092", "OMS_KAFKA_PROPERTIES": '{"client.rack": "az1", "c": "d"}'}

    variables = flag_environment(args, environ)

    assert variables["OMS_KAFKA_BOOTSTRAP_SERVERS"] == "flag-1:9092"
    assert variables["OMS_SCHEMA_REGISTRY_URL"] == "http://r:8081"
    assert json.loads(variables["OMS_KAFKA_PROPERTIES"]) == {"client.rack": "az3", "c": "d", "a": "b"}


def test_no_flag_sets_nothing() -> None:
    assert flag_environment(build_parser().parse_args(["topics", "list"]), {}) == {}


def test_profile_flag_after_the_verb_chooses_the_profile() -> None:
    args = build_parser().parse_args(["--profile", "staging", "sagas", "--profile", "prod"])

    assert flag_environment(args, {}) == {"OMS_PROFILE": "prod"}


def test_a_profile_with_an_unknown_setting_is_refused(config: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    config.write_text('[profiles.prod]\nbootstrap_servers = "b:9092"\n')
    monkeypatch.setenv("OMS_PROFILE", "prod")

    with pytest.raises(ProfileError, match="no such setting bootstrap_servers"):
        load_settings()


def test_a_config_file_that_is_not_toml_is_refused(config: Path) -> None:
    config.write_text("[profiles.prod\n")

    with pytest.raises(ProfileError, match="is not TOML"):
        selected_profile({"OMS_CONFIG": str(config), "OMS_PROFILE": "prod"})


def test_the_default_config_file_is_under_xdg_config_home_and_may_be_absent(tmp_path: Path) -> None:
    assert selected_profile({"XDG_CONFIG_HOME": str(tmp_path)}) is None
    with pytest.raises(ConfigFileMissing, match=str(tmp_path / "oms" / "config.toml")):
        selected_profile({"XDG_CONFIG_HOME": str(tmp_path), "OMS_PROFILE": "prod"})

    (tmp_path / "oms").mkdir()
    (tmp_path / "oms" / "config.toml").write_text(PROFILES)
    profile = selected_profile({"XDG_CONFIG_HOME": str(tmp_path), "OMS_PROFILE": "staging"})
    assert profile is not None and profile.values == {"kafka_bootstrap_servers": "staging-1:9092"}


def test_oms_config_names_each_source(config: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OMS_PROFILE", "prod")
    monkeypatch.setenv("OMS_ORDER_PARTITIONS", "6")
    monkeypatch.setenv("OMS_SCHEMA_REGISTRY_URL", "http://flagged:8081")
    environ = {"OMS_PROFILE": "prod", "OMS_ORDER_PARTITIONS": "6", "OMS_SCHEMA_REGISTRY_URL": "http://flagged:8081"}

    rows = {
        name: (value, source)
        for name, value, source in settings_rows(
            load_settings(),
            environ,
            frozenset({"OMS_SCHEMA_REGISTRY_URL"}),
            selected_profile(environ | {"OMS_CONFIG": str(config)}),
        )
    }

    assert rows["OMS_SCHEMA_REGISTRY_URL"] == ("http://flagged:8081", "flag")
    assert rows["OMS_ORDER_PARTITIONS"] == ("6", "environment")
    assert rows["OMS_KAFKA_BOOTSTRAP_SERVERS"] == ("prod-1:9093,prod-2:9093", "profile prod")
    assert rows["OMS_COMMIT_INTERVAL_S"] == ("0.25", "default")
    assert rows["OMS_PROFILE"] == ("prod", "environment")


def test_oidc_settings_reach_the_client_config_and_oms_config_hides_the_secret(monkeypatch: pytest.MonkeyPatch) -> None:
    oidc = {
        "OMS_KAFKA_SECURITY_PROTOCOL": "SASL_SSL",
        "OMS_KAFKA_SASL_MECHANISM": "OAUTHBEARER",
        "OMS_KAFKA_SASL_OAUTHBEARER_METHOD": "oidc",
        "OMS_KAFKA_SASL_OAUTHBEARER_CLIENT_ID": "oms-operator",
        "OMS_KAFKA_SASL_OAUTHBEARER_CLIENT_SECRET": "hunter2",
        "OMS_KAFKA_SASL_OAUTHBEARER_TOKEN_ENDPOINT_URL": "https://idp.example.com/oauth2/token",
        "OMS_KAFKA_SASL_OAUTHBEARER_SCOPE": "kafka",
        "OMS_KAFKA_SASL_OAUTHBEARER_EXTENSIONS": "logicalCluster=lkc-1,identityPoolId=pool-1",
        "OMS_KAFKA_PROPERTIES": json.dumps({"sasl.password": "hunter2", "client.rack": "az1"}),
    }
    monkeypatch.delenv("OMS_PROFILE", raising=False)
    for name, value in oidc.items():
        monkeypatch.setenv(name, value)

    settings = load_settings()
    config = settings.kafka_config()
    rows = {name: value for name, value, _ in settings_rows(settings, oidc)}

    assert {key: value for key, value in config.items() if key.startswith("sasl.oauthbearer")} == {
        "sasl.oauthbearer.method": "oidc",
        "sasl.oauthbearer.client.id": "oms-operator",
        "sasl.oauthbearer.client.secret": "hunter2",
        "sasl.oauthbearer.token.endpoint.url": "https://idp.example.com/oauth2/token",
        "sasl.oauthbearer.scope": "kafka",
        "sasl.oauthbearer.extensions": "logicalCluster=lkc-1,identityPoolId=pool-1",
    }
    assert rows["OMS_KAFKA_SASL_OAUTHBEARER_CLIENT_SECRET"] == HIDDEN
    assert json.loads(rows["OMS_KAFKA_PROPERTIES"]) == {"sasl.password": HIDDEN, "client.rack": "az1"}
    assert all("hunter2" not in value for value in rows.values())


def test_quix_streams_gets_the_connection_settings_and_the_rest_as_extra_config(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("OMS_KAFKA_SASL_OAUTHBEARER_METHOD", "oidc")
    monkeypatch.setenv("OMS_KAFKA_PROPERTIES", json.dumps({"client.rack": "az1"}))

    connection, extra = connection_and_extra(load_settings().kafka_config())

    assert connection["sasl.oauthbearer.method"] == "oidc" and "bootstrap.servers" in connection
    assert extra == {"client.rack": "az1", "logger": KAFKA_CLIENT_LOGGER}


@pytest.mark.parametrize("servers", ["b-1", "b-1:9092,b-2:9092", "SASL_SSL://b-1:9093", "[::1]:9092"])
def test_bootstrap_servers_in_librdkafkas_forms_are_accepted(servers: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OMS_KAFKA_BOOTSTRAP_SERVERS", servers)

    assert load_settings().kafka_bootstrap_servers == servers


def test_an_x_property_needs_a_key_and_keeps_any_equals_sign_in_its_value() -> None:
    with pytest.raises(SystemExit):
        build_parser().parse_args(["-X", "=value", "topics", "list"])

    assert build_parser().parse_args(["-X", "sasl.oauthbearer.extensions=a=b", "topics", "list"]).properties == [
        ("sasl.oauthbearer.extensions", "a=b")
    ]
