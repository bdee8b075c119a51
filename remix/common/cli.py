"""One way to build a console script: a hydra app over the YAML in `configs/`.

`hydra_main(config_name, positional=(...))` turns leading bare words into overrides, so
`remix-data info PATH` means `remix-data command=info path=PATH`. A `RemixError` raised by the app
prints one line (`error: ...`) and exits 1; a config that does not compose (an unknown key, a bad
override) is reported the same way, with exit 2, before the app runs. Configs are found in the installed package (`remix.configs` maps to the repo's `configs/`).
"""

from __future__ import annotations

import functools
import inspect
import os
import re
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import hydra
from hydra import compose, initialize_config_module
from hydra.errors import HydraException
from omegaconf import DictConfig, OmegaConf
from omegaconf.errors import OmegaConfBaseException, ValidationError

from remix.common.errors import ConfigError, RemixError
from remix.common.operator_input import OperatorInput, make_operator, register_operator_group

CONFIG_MODULE = "remix.configs"
register_operator_group()
CONFIG_PATH = f"pkg://{CONFIG_MODULE}"
# hydra flags that take a value: that value is not a positional argument or an override.
_FLAGS_WITH_VALUE = {"--cfg", "-c", "--package", "-p", "--info", "-i", "--config-path", "-cp",
                     "--config-name", "-cn", "--config-dir", "-cd", "--experimental-rerun"}


# with these flags hydra composes differently (other config dirs) or does not compose at all.
_SKIP_PRECHECK = {"--help", "-h", "--hydra-help", "--shell-completion", "-sc", "--config-path", "-cp", "--multirun", "-m",
                  "--config-name", "-cn", "--config-dir", "-cd"}


def _rewrite_argv(argv: Sequence[str], positional: Sequence[str]) -> list[str]:
    out: list[str] = []
    names = list(positional)
    takes_value = False
    for arg in argv:
        if names and not takes_value and not arg.startswith("-") and "=" not in arg:
            out.append(f"{names.pop(0)}={_quote(arg)}")
        elif not takes_value and not arg.startswith("-") and _PLAIN_NON_ASCII.match(arg):
            key, value = arg.split("=", 1)  # out=données/run: hydra's lexer takes only ASCII outside quotes
            out.append(f"{key}={_quote(value)}")
        else:
            out.append(arg)
        takes_value = arg in _FLAGS_WITH_VALUE
    return out


# ASCII only: hydra's override lexer rejects unquoted non-ASCII text (a path such as données/run.zarr).
_UNQUOTED_OK = re.compile(r"^[\w\-+./:@%*?$~]*$", re.ASCII)
# key=value whose value is a plain word or path with non-ASCII letters (no list, dict, quote or interpolation)
_PLAIN_NON_ASCII = re.compile(r"^[+~]{0,2}[\w.\-]+=(?=.*[^\x00-\x7f])[\w\-+./:@%*?~ ]+$")


def _quote(value: str) -> str:
    """Quote a positional value for hydra's override grammar when it holds special characters (#, spaces, ...)."""
    already_quoted = len(value) >= 2 and value[0] == value[-1] and value[0] in "'\""
    if already_quoted or _UNQUOTED_OK.match(value):
        return value
    quote = '"' if "'" in value else "'"
    return f"{quote}{value}{quote}"


def _overrides(argv: Sequence[str]) -> list[str]:
    found, skip = [], False
    for arg in argv:
        if not skip and not arg.startswith("-"):
            found.append(arg)
        skip = arg in _FLAGS_WITH_VALUE
    return found


# Keys that were renamed so that one concept has one name in every CLI: an old key gets a one-line error
# naming its replacement (never silently accepted).
RENAMED_KEYS = {
    "output_dir": "out",
    "data.stores": "data.paths",
    "data.domain_field": "data.domain_key",
    "model.use_proprio": "model.use_state",
    "model.image_encoder": "model.encoder",
    "operator.kind": "operator",
    "teleop.kind": "teleop",
    "db": "out",
    "store": "out",
    "paths": "data.paths",
    "data_paths": "data.paths",
}
_TYPE_NAMES = {"Integer": "an integer", "Float": "a number", "Boolean": "true or false"}


def renamed_key(config_name: str, key: str) -> str | None:
    """The new name of an old key, if `key` (as typed, without +/~ prefixes) is one this CLI no longer has."""
    key = key.lstrip("+~")
    new = RENAMED_KEYS.get(key)
    if new is None:
        return None
    # only a redirect where the old key really is gone (remix-report's db, remix-subset's paths... stay)
    with initialize_config_module(CONFIG_MODULE, version_base=None):
        cfg = compose(config_name)
    return None if OmegaConf.select(cfg, key, default=_ABSENT) is not _ABSENT else new


_ABSENT = object()


def _type_problem(error: BaseException) -> str | None:
    """`key=value: expected an integer` from OmegaConf's multi-line validation error, if that is the cause."""
    cause: BaseException | None = error
    while cause is not None and not isinstance(cause, ValidationError):
        cause = cause.__cause__
    if cause is None or not getattr(cause, "full_key", None):
        return None
    wanted = re.search(r"could not be converted to (\w+)", cause.msg)
    value = re.search(r"Value '([^']*)'", cause.msg)
    if wanted and value:
        expected = _TYPE_NAMES.get(wanted.group(1), wanted.group(1))
        return f"{cause.full_key}={value.group(1)} is not valid: {cause.full_key} must be {expected}"
    return f"{cause.full_key}: {cause.msg.splitlines()[0]}"


_NOT_A_LIST = re.compile(r"Invalid value assigned: (\w+) is not a ListConfig")


def _list_key(error: BaseException, given: str | None = None) -> str | None:
    """The key of a list setting that was given one bare value (`data.paths=x.zarr`), if that is the error;
    with `given`, only when that value was of this type (str for a string)."""
    cause: BaseException | None = error
    while cause is not None and not isinstance(cause, ValidationError):
        cause = cause.__cause__
    found = None if cause is None else _NOT_A_LIST.search(str(getattr(cause, "msg", "")))
    if cause is None or found is None or not getattr(cause, "full_key", None):
        return None
    return str(cause.full_key) if given is None or found.group(1) == given else None


def _override_index(args: Sequence[str], key: str) -> int | None:
    for index, arg in enumerate(args):
        if not arg.startswith("-") and "=" in arg and arg.split("=", 1)[0].lstrip("+~") == key:
            return index
    return None


def single_items_as_lists(config_name: str, args: Sequence[str]) -> list[str]:
    """`key=value` for a list setting given one string means `key=[value]` (`data.paths=x.zarr`,
    `data.cotrain=d.zarr`, `model.cameras=cam0`, ...): a list of one is what the user meant, and hydra's own
    message ("str is not a ListConfig") does not say what to type. A bare number for a list of numbers is
    left alone (`check_overrides` then names the fix: `model.image_size=[32]`)."""
    args = list(args)
    for _ in range(len(args)):
        try:
            with initialize_config_module(CONFIG_MODULE, version_base=None):
                compose(config_name, overrides=_overrides(args))
            return args
        except (HydraException, OmegaConfBaseException) as error:
            key = _list_key(error, given="str")
            index = None if key is None else _override_index(args, key)
            if key is None or index is None:
                return args
            name, _, value = args[index].partition("=")
            if not value or value.startswith("["):
                return args
            args[index] = f"{name}=[{value}]"
    return args


def check_overrides(config_name: str, overrides: Sequence[str]) -> str | None:
    """Compose the config with the user's overrides; return a one-line reason if that fails."""
    program = Path(sys.argv[0]).name
    for override in overrides:
        key = override.split("=", 1)[0]
        new = renamed_key(config_name, key)
        if new is not None:
            return f"'{key.lstrip('+~')}' is now called '{new}'; write {new}=... (run {program} --help to see its settings)"
    try:
        with initialize_config_module(CONFIG_MODULE, version_base=None):
            compose(config_name, overrides=list(overrides))
    except (HydraException, OmegaConfBaseException) as error:
        listed = _list_key(error)
        index = None if listed is None else _override_index(overrides, listed)
        if listed is not None and index is not None:
            value = overrides[index].split("=", 1)[1]
            return f"{listed} must be a list: write {listed}=[{value}] (run {program} --help to see its settings)"
        typed = _type_problem(error)
        if typed:
            return f"{typed} (run {program} --help to see its settings)"
        text = str(error)
        if "LexerNoViableAltException" in text or "token recognition error" in text:
            odd = next((o for o in overrides if not o.isascii()), None)
            if odd is not None:  # non-ASCII text inside a list or dict: hydra needs it quoted
                return (f"cannot parse {odd!r}: text with non-ASCII characters must be quoted inside lists and dicts, "
                        f"e.g. \"key=['données.zarr']\" (run {program} --help to see its settings)")
        unknown = re.search(r"Could not override '([^']+)'", text)
        if unknown and "To append to your config" in text:
            return f"unknown setting '{unknown.group(1)}' for {program}; run {program} --help to see its settings"
        lines = [line.strip() for line in text.splitlines() if line.strip()]
        return " ".join(lines[:4]) + f" (run {program} --help to see its settings)"
    return None


def report_error(error: BaseException) -> None:
    print(f"error: {error}", file=sys.stderr, flush=True)


def hydra_main(
    config_name: str, positional: Sequence[str] = (), usage: str | None = None,
    schema: Callable[[], type] | None = None,
) -> Callable[[Callable[[DictConfig], Any]], Callable[[], None]]:
    """Decorate `fn(cfg)` into a console-script entry point; `--help` prints `usage` (else fn's docstring).

    `schema` returns the settings dataclass, registered as `<config_name>_schema` when the script starts
    (for dataclasses whose module is too heavy to import with its neighbours).
    """

    def decorate(fn: Callable[[DictConfig], Any]) -> Callable[[], None]:
        @functools.wraps(fn)
        def entry() -> None:
            if schema is not None:
                from remix.common.config import register

                register(f"{config_name}_schema", schema())
            text = usage or fn.__doc__
            if {"--help", "-h"} & set(sys.argv[1:]) and text:
                print(inspect.cleandoc(text), end="\n\n")
            sys.argv = [sys.argv[0], *_rewrite_argv(sys.argv[1:], positional)]
            if not any(arg.split("=")[0] in _SKIP_PRECHECK for arg in sys.argv[1:]):
                problem = check_overrides(config_name, _overrides(sys.argv[1:]))
                listed = None if problem is None else single_items_as_lists(config_name, sys.argv[1:])
                if listed is not None and listed != sys.argv[1:]:  # data.paths=x.zarr: a list of one
                    sys.argv = [sys.argv[0], *listed]
                    problem = check_overrides(config_name, _overrides(listed))
                if problem:
                    print(f"error: {problem}", file=sys.stderr, flush=True)
                    sys.exit(2)

            @hydra.main(version_base=None, config_path=CONFIG_PATH, config_name=config_name)
            def app(cfg: DictConfig) -> None:
                OmegaConf.set_struct(cfg, True)
                try:
                    result = fn(cfg)
                except RemixError as error:
                    report_error(error)
                    sys.exit(1)
                except KeyboardInterrupt:
                    print("interrupted", file=sys.stderr)
                    sys.exit(130)
                except BrokenPipeError:  # output piped into `head` and the like: stop quietly
                    os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
                    sys.exit(1)
                if isinstance(result, int) and result != 0:
                    sys.exit(result)

            app()

        return entry

    return decorate


def prepare_out_dir(out: str | Path, what: str, *, holds: tuple[str, str] | None = None, overwrite: bool = False,
                    create: bool = True) -> Path:
    """Check (and create) a command's output directory `out`; every problem is a one-line ConfigError.

    The one place remix-weights, remix-subset and remix-select check their `out=`: it must not be a file,
    must not already hold a finished result (`holds`: (marker file, what it holds)) unless `overwrite`,
    and must be creatable and writable. `create=False` only checks, for commands that first validate the
    rest of their input so that a refused run leaves no empty directory behind.
    """
    out = Path(out).expanduser()
    if out.exists() and not out.is_dir():
        raise ConfigError(f"out={out} is a file; give a directory for {what}")
    if holds is not None and (out / holds[0]).exists() and not overwrite:
        raise ConfigError(f"{out} already holds {holds[1]}; pass overwrite=true or choose another out=")
    if not create:
        return out
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise ConfigError(f"cannot create out={out} ({error.strerror}); choose a writable place") from None
    if not os.access(out, os.W_OK | os.X_OK):
        raise ConfigError(f"out={out} is not writable; choose a writable place")
    return out


def to_plain(node: Any) -> Any:
    """A config node as plain Python (dicts, lists, scalars); other values pass through."""
    return OmegaConf.to_container(node, resolve=True) if OmegaConf.is_config(node) else node


def as_str_list(value: Any, key: str) -> list[str]:
    """A config value given as `key=[a,b]` or `key=a` as a list of strings (None -> [])."""
    value = to_plain(value)
    if value is None:
        return []
    if isinstance(value, str):
        return [value]
    if not isinstance(value, list):
        raise ConfigError(f"{key} must be a list, e.g. {key}=[a,b]; got {value!r}")
    return [str(v) for v in value]


def as_str_mapping(value: Any, key: str) -> dict[str, str]:
    """A config value given as `key={a:x,b:y}` as a {str: str} dict (None -> {})."""
    value = to_plain(value)
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise ConfigError(f"{key} must be a mapping, e.g. {key}={{name:value}}; got {value!r}")
    return {str(k): str(v) for k, v in value.items()}


def operator_from_config(node: Any) -> OperatorInput:
    """The operator input a config's `operator` group asks for (operator=terminal|scripted, answers, keys)."""
    return make_operator(
        str(node["_target_"]), as_str_list(node.get("answers"), "operator.answers"),
        as_str_list(node.get("keys"), "operator.keys"),
    )
