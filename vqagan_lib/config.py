"""Dataclass configs, overridable from the command line (`--gan.weight 0.1`) or a JSON file.

Configs nest by component (`TrainConfig(model=..., gan=...)`); a dotted flag walks
the nesting. Values are parsed by the field's declared type, so typos fail loudly.
"""
import dataclasses
import json
import types
import typing

from vqagan_lib.errors import VQAGanError


def _parse_value(text: str, kind):
    origin = typing.get_origin(kind)
    if origin is typing.Union or origin is types.UnionType:
        args = [a for a in typing.get_args(kind) if a is not type(None)]
        if text.lower() in ("none", "null"):
            return None
        return _parse_value(text, args[0])
    if kind is bool:
        if text.lower() in ("1", "true", "yes", "on"):
            return True
        if text.lower() in ("0", "false", "no", "off"):
            return False
        raise ValueError(f"not a boolean: {text!r}")
    if kind in (int, float, str):
        return kind(text)
    if origin in (tuple, list):
        return kind(json.loads(text)) if origin is list else tuple(json.loads(text))
    return json.loads(text)


def override(cfg, dotted: str, text: str):
    """Return a copy of `cfg` with the field at `dotted` (e.g. 'gan.weight') set from `text`."""
    head, _, rest = dotted.partition(".")
    fields = {f.name: f for f in dataclasses.fields(cfg)}
    if head not in fields:
        raise VQAGanError(f"unknown config field '{dotted}' (known: {', '.join(fields)})")
    if rest:
        return dataclasses.replace(cfg, **{head: override(getattr(cfg, head), rest, text)})
    hints = typing.get_type_hints(type(cfg))
    try:
        value = _parse_value(text, hints[head])
    except (ValueError, json.JSONDecodeError) as e:
        raise VQAGanError(f"config field '{dotted}': cannot read {text!r} as {hints[head]} ({e})") from None
    return dataclasses.replace(cfg, **{head: value})


def apply_overrides(cfg, args: list[str]):
    """Apply `--a.b value` / `--a.b=value` pairs in order."""
    i = 0
    while i < len(args):
        flag = args[i]
        if not flag.startswith("--"):
            raise VQAGanError(f"expected a --field.name flag, got {flag!r}")
        if "=" in flag:
            key, value = flag[2:].split("=", 1)
            i += 1
        else:
            if i + 1 >= len(args):
                raise VQAGanError(f"{flag} needs a value")
            key, value = flag[2:], args[i + 1]
            i += 2
        cfg = override(cfg, key, value)
    return cfg


def as_flags(changes: dict) -> list[str]:
    """{"gan.weight": 0.5, "rate.target": None} -> ["--gan.weight", "0.5", "--rate.target", "none"]: the
    command-line form of a set of changes, as `apply_overrides` and `python -m vqagan_lib train` read it."""
    flags = []
    for key, value in changes.items():
        if value is None:
            text = "none"
        elif isinstance(value, bool):
            text = "true" if value else "false"
        elif isinstance(value, (tuple, list, dict)):
            text = json.dumps(list(value) if isinstance(value, tuple) else value)
        else:
            text = str(value)
        flags += [f"--{key}", text]
    return flags


def to_dict(cfg) -> dict:
    return dataclasses.asdict(cfg)


class ConfigError(VQAGanError, ValueError):
    """A config dict (a card's `config`, a --config file) that does not fit its dataclass."""


def _type_name(kind) -> str:
    return getattr(kind, "__name__", None) or str(kind).replace("typing.", "")


def _checked(value, kind, where: str):
    """`value` read from JSON, checked against the field type `kind` (and a list turned into a tuple)."""
    origin, args = typing.get_origin(kind), typing.get_args(kind)
    if origin is typing.Union or origin is types.UnionType:
        if value is None and type(None) in args:
            return None
        for option in (a for a in args if a is not type(None)):
            try:
                return _checked(value, option, where)
            except ConfigError:
                pass
    elif dataclasses.is_dataclass(kind):
        return from_dict(kind, value, where)
    elif kind is bool:
        if isinstance(value, bool):
            return value
    elif kind is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
    elif kind is float:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
    elif kind is str:
        if isinstance(value, str):
            return value
    elif origin in (tuple, list):
        if isinstance(value, (list, tuple)):
            if origin is list or (len(args) == 2 and args[1] is Ellipsis):
                items = [_checked(v, args[0], f"{where}[{i}]") if args else v for i, v in enumerate(value)]
            elif len(value) == len(args):
                items = [_checked(v, a, f"{where}[{i}]") for i, (v, a) in enumerate(zip(value, args))]
            else:
                raise ConfigError(f"{where}: expected {len(args)} values, got {len(value)}")
            return tuple(items) if origin is tuple else items
    else:
        return value  # dict, Any and the like: taken as written
    shown = json.dumps(value)
    raise ConfigError(f"{where}: expected {_type_name(kind)}, got {shown if len(shown) <= 40 else shown[:37] + '...'}")


def from_dict(cls, data: dict, where: str = "config"):
    """Build a (nested) dataclass from a dict such as a checkpoint card's `config`, checking every field.

    A value of the wrong type is a ConfigError (a VQAGanError) naming the field, so a damaged or
    hand-edited card fails here in one line, not deep inside a model's constructor. Fields the
    dataclass no longer has are ignored: older cards keep loading after a setting is retired.
    """
    if not isinstance(data, dict):
        raise ConfigError(f"{where}: expected a JSON object, got {type(data).__name__}")
    hints = typing.get_type_hints(cls)
    fields = [f.name for f in dataclasses.fields(cls)]
    return cls(**{name: _checked(data[name], hints[name], f"{where}.{name}") for name in fields if name in data})
