"""How `oms` ends when it cannot do what it was asked: an exit status per kind of failure, following
sysexits.h where one fits, and one line that names what to fix, never a traceback.

| status | meaning |
|---|---|
| 0 | done |
| 1 | done, and the answer is "no" (drift, an incompatible schema, a rejected cancellation, ...) |
| 2 | a command line or request the command refuses |
| 3 | `oms cancel --wait`: no answer in time; `oms status`: a processor needs an operator |
| 66 | EX_NOINPUT: a file the settings name (a CA, a key, the config file) is not there |
| 69 | EX_UNAVAILABLE: Kafka or the schema registry did not answer |
| 77 | EX_NOPERM: Kafka or the schema registry refused the credentials |
| 75 | EX_TEMPFAIL: a processor stopped for an outage that outlasted its retries (`oms run`) |
| 78 | EX_CONFIG: a setting, profile or client property is wrong |
| 130 | interrupted (Ctrl-C) |
"""

from __future__ import annotations

import re
from collections.abc import Callable

from pydantic import ValidationError
from pydantic_settings import SettingsError

from ops.reachability import ClientRefused, CredentialsRefused, MissingFile, NotTheRegistryApi, Unreachable
from topology.profiles import ConfigFileMissing, ProfileError
from topology.settings import Settings

USAGE = 2
NO_INPUT = 66
UNAVAILABLE = 69
NO_PERMISSION = 77
CONFIG = 78  # processors.runtime.errors.CONFIG_EXIT_CODE, which `oms run all` leaves stopped
INTERRUPTED = 130


def failure(error: BaseException, source_of: Callable[[str], str]) -> tuple[int, str] | None:
    """The exit status and line for a failure of the command's settings or surroundings, or None for an error
    of the command's own (a bug, to be shown in full). `source_of(field)` names where a setting was given."""
    if isinstance(error, ValidationError) and error.title == Settings.__name__:
        return CONFIG, wrong_settings(error, source_of)
    if isinstance(error, SettingsError):
        return CONFIG, unparsed_setting(error, source_of)
    if isinstance(error, ProfileError | ClientRefused | NotTheRegistryApi):
        return CONFIG, f"{error}"
    if isinstance(error, ConfigFileMissing | MissingFile):
        return NO_INPUT, f"{error}"
    if isinstance(error, CredentialsRefused):
        return NO_PERMISSION, f"{error}"
    if isinstance(error, Unreachable):
        return UNAVAILABLE, f"{error}. Check its address and security settings: `oms config`"
    return None


def wrong_settings(error: ValidationError, source_of: Callable[[str], str]) -> str:
    """One line naming each setting that does not parse, where it was given, and why."""
    wrong = "; ".join(
        f"{source_of(str(problem['loc'][0])) if problem['loc'] else 'settings'}: "
        + problem["msg"].removeprefix("Value error, ")
        for problem in error.errors()
    )
    return f"settings that do not parse: {wrong}"


def unparsed_setting(error: SettingsError, source_of: Callable[[str], str]) -> str:
    """pydantic-settings' error for a variable that is not the JSON a setting of many values needs."""
    field = re.search(r'field "(\w+)"', str(error))
    if field is None:
        return f"settings that do not parse: {error}"
    return f'settings that do not parse: {source_of(field[1])}: not a JSON object, e.g. {{"client.rack": "az1"}}'


def unreachable(error: BaseException, kafka: str, registry: str) -> str:
    """One line for an outage met on the way: what did not answer, and what to do, instead of a traceback."""
    detail = (str(error) or type(error).__name__).splitlines()[0][:200]
    return (
        f"Kafka ({kafka}) or the schema registry ({registry}) did not answer: {detail}. "
        "`oms status` tells what answers; `oms up` starts the local ones."
    )
