"""`--config FILE`: listen's options from a TOML file, so a service's settings live in one file.

The `[listen]` table's keys are the long option names without the dashes (`log-max-mb = 5`,
`db = "/var/lib/edge-asc/history.db"`); repeatable options take an array. Per-class event
thresholds have a table of their own, `[thresholds]` (`siren = 0.7`). The file's values become
the options' defaults, so anything on the command line wins. A key that is no option, or a value
of the wrong type, is one line naming it (EdgeAscError, exit 2): a typo must not be ignored for
months on a Pi.
"""

from __future__ import annotations

import math
import sys
from pathlib import Path
from typing import Any

from edge_asc.errors import EdgeAscError

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10 (pyproject.toml installs tomli there)
    import tomli as tomllib

TABLES = ("listen", "thresholds")
NOT_IN_FILE = frozenset({"config_file", "help"})  # options that make no sense in the file itself


def read_toml(path: Path) -> dict[str, Any]:
    """The parsed file; EdgeAscError in one line when it cannot be read or is not TOML."""
    try:
        text = path.read_bytes().decode("utf-8")
    except OSError as err:
        raise EdgeAscError(f"cannot read the config {path}: {err.strerror}") from err
    except UnicodeDecodeError:
        raise EdgeAscError(f"the config {path} is not UTF-8 text (TOML)") from None
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as err:
        raise EdgeAscError(f"the config {path} is not valid TOML: {err}") from None


def options_by_name(command: Any) -> dict[str, Any]:
    """Long option name without dashes ('log-max-mb') -> the option of the (click) command.
    Typed Any: typer carries its own copy of click, whose classes are not public."""
    found = {}
    for param in command.params:
        for opt in param.opts:
            if opt.startswith("--"):
                found[opt[2:]] = param
    return {name: opt for name, opt in found.items() if opt.name not in NOT_IN_FILE}


def _kind(option: Any) -> str:
    if getattr(option, "is_flag", False):
        return "bool"
    return {"int": "int", "integer": "int", "float": "float"}.get(option.type.name, "str")


def _fits(value: Any, kind: str) -> bool:
    if kind == "bool":
        return isinstance(value, bool)
    if isinstance(value, bool):
        return False
    if kind == "int":
        return isinstance(value, int)
    if kind == "float":
        return isinstance(value, (int, float))
    return isinstance(value, str)


WORDS = {"bool": "true or false", "int": "an integer", "float": "a number", "str": "a string"}


def _value(path: Path, key: str, value: Any, option: Any) -> Any:
    """The file's value for `option`, as the command line would give it; EdgeAscError naming
    the key when its type is wrong."""
    kind = _kind(option)
    if option.name == "device" and isinstance(value, int) and not isinstance(value, bool):
        value = str(value)  # a device index, as `edge-asc devices` lists it
    if option.multiple:
        items = value if isinstance(value, list) else [value]
        if all(_fits(item, kind) for item in items):
            return items
        want = f"an array of {WORDS[kind].removeprefix('an ').removeprefix('a ')}s"
    else:
        if _fits(value, kind):
            return float(value) if kind == "float" else value
        want = WORDS[kind]
    got = type(value).__name__
    shown = {"str": "string", "list": "array", "dict": "table"}.get(got, got)
    raise EdgeAscError(f"the config {path}: [listen] {key} must be {want} (got {shown} {value!r})")


def listen_defaults(path: Path, command: Any) -> dict[str, Any]:
    """click's default map for `command` from the file at `path` (checked, see the module)."""
    data = read_toml(path)
    unknown = [key for key in data if key not in TABLES]
    if unknown:
        raise EdgeAscError(
            f"the config {path}: unknown table or key {unknown[0]!r} (known: "
            f"{', '.join(f'[{t}]' for t in TABLES)})"
        )
    options = options_by_name(command)
    defaults: dict[str, Any] = {}
    listen = data.get("listen", {})
    if not isinstance(listen, dict):
        raise EdgeAscError(f"the config {path}: listen must be a table ([listen])")
    for key, value in listen.items():
        option = options.get(key)
        if option is None or option.name is None:
            raise EdgeAscError(
                f"the config {path}: unknown key {key!r} in [listen] (not an option of "
                "`edge-asc listen`; see `edge-asc listen --help`)"
            )
        defaults[option.name] = _value(path, key, value, option)
    thresholds = data.get("thresholds", {})
    if not isinstance(thresholds, dict):
        raise EdgeAscError(f"the config {path}: thresholds must be a table ([thresholds])")
    pairs = []
    for label, value in thresholds.items():
        if not isinstance(value, (int, float)) or isinstance(value, bool):
            raise EdgeAscError(
                f"the config {path}: [thresholds] {label} must be a number from 0 to 1 "
                f"(got {value!r})"
            )
        if not (math.isfinite(value) and 0 <= value <= 1):
            raise EdgeAscError(
                f"the config {path}: [thresholds] {label} must be from 0 to 1 (got {value})"
            )
        pairs.append(f"{label}={value}")
    if pairs:
        defaults["class_threshold"] = [*defaults.get("class_threshold", []), *pairs]
    return defaults
