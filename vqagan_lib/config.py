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


def to_dict(cfg) -> dict:
    return dataclasses.asdict(cfg)


def from_dict(cls, data: dict):
    """Build a (nested) dataclass from a dict such as a checkpoint card's `config`."""
    hints = typing.get_type_hints(cls)
    kwargs = {}
    for f in dataclasses.fields(cls):
        if f.name not in data:
            continue
        value = data[f.name]
        if dataclasses.is_dataclass(hints[f.name]) and isinstance(value, dict):
            value = from_dict(hints[f.name], value)
        elif isinstance(value, list) and typing.get_origin(hints[f.name]) is tuple:
            value = tuple(value)
        kwargs[f.name] = value
    return cls(**kwargs)
