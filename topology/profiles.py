"""Named profiles of settings in one TOML file, as `rpk` keeps its profiles: a `[profiles.NAME]` table per
cluster, whose keys are the settings (`kafka_bootstrap_servers = "b-1:9092"`), chosen by `OMS_PROFILE`."""

from __future__ import annotations

import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

CONFIG_VARIABLE = "OMS_CONFIG"
PROFILE_VARIABLE = "OMS_PROFILE"


class ConfigFileMissing(Exception):
    """The config file a profile is to come from is not there."""


class ProfileError(Exception):
    """The config file does not parse, or has no such profile, or a profile names no setting."""


@dataclass(frozen=True)
class Profile:
    name: str
    path: Path
    values: dict[str, Any]


def config_path(environ: Mapping[str, str]) -> Path:
    """`OMS_CONFIG`, or `oms/config.toml` under the XDG config folder (~/.config)."""
    if environ.get(CONFIG_VARIABLE):
        return Path(environ[CONFIG_VARIABLE]).expanduser()
    config_home = environ.get("XDG_CONFIG_HOME") or str(Path(environ.get("HOME") or Path.home()) / ".config")
    return Path(config_home) / "oms" / "config.toml"


def selected_profile(environ: Mapping[str, str]) -> Profile | None:
    """The profile `OMS_PROFILE` names, or None when it names none. A file `OMS_CONFIG` names must exist
    even then: a path mistyped there would otherwise go unnoticed."""
    path = config_path(environ)
    name = environ.get(PROFILE_VARIABLE) or None
    if not path.is_file():
        if name is not None or environ.get(CONFIG_VARIABLE):
            wanted = f" for profile {name!r}" if name else ""
            raise ConfigFileMissing(f"no config file {path}{wanted} (OMS_CONFIG names another)")
        return None
    if name is None:
        return None
    profiles = read_profiles(path)
    if name not in profiles:
        known = ", ".join(sorted(profiles)) or "none"
        raise ProfileError(f"{path} has no profile {name!r} (a [profiles.{name}] table); its profiles: {known}")
    return profiles[name]


def read_profiles(path: Path) -> dict[str, Profile]:
    """Every `[profiles.NAME]` table of the file at `path`."""
    try:
        document = tomllib.loads(path.read_text())
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as error:
        raise ProfileError(f"{path} is not TOML: {error}") from None
    tables = document.get("profiles", {})
    if not isinstance(tables, dict):
        raise ProfileError(f"{path}: `profiles` is to be a table of [profiles.NAME] tables")
    return {name: Profile(name, path, values) for name, values in tables.items() if isinstance(values, dict)}
