"""`TrainConfig` as `catdog train` flags, both ways: one flag per field, and the flags of a config."""

from __future__ import annotations

import argparse
import dataclasses
import types
import typing
from typing import Any

from catdog.training.config import TrainConfig


def _flag(name: str) -> str:
    return "--" + name.replace("_", "-")


def _field_kind(hint: Any) -> tuple[str, type]:
    """("bool" | "list" | "value", element type) of a TrainConfig field's type hint."""
    members = (
        [a for a in typing.get_args(hint) if a is not type(None)] if typing.get_origin(hint) in (typing.Union, types.UnionType) else [hint]
    )
    if bool in members:
        return "bool", bool
    for member in members:
        if typing.get_origin(member) in (list, tuple):
            return "list", (typing.get_args(member) or (str,))[0]
    return "value", members[0]


def _config_fields() -> list[tuple[dataclasses.Field, str, type]]:
    hints = typing.get_type_hints(TrainConfig)
    return [(f, *_field_kind(hints[f.name])) for f in dataclasses.fields(TrainConfig)]


def config_flags(cfg: TrainConfig) -> list[str]:
    """The `catdog train` flags that rebuild `cfg` exactly (None values are left out)."""
    flags: list[str] = []
    for f, kind, _ in _config_fields():
        value = getattr(cfg, f.name)
        if value is None:
            continue
        if kind == "bool":
            flags.append(_flag(f.name) if value else _flag(f"no_{f.name}"))
        elif kind == "list":
            for item in value if isinstance(value, (list, tuple)) else [value]:
                flags += [_flag(f.name), str(item)]
        else:
            flags += [_flag(f.name), repr(value) if isinstance(value, float) else str(value)]
    return flags


def add_config_arguments(parser: argparse.ArgumentParser) -> None:
    """Add one flag per TrainConfig field; unset flags parse as None (the field's default)."""
    for f, kind, element in _config_fields():
        common = {"dest": f.name, "default": None, "help": f.metadata.get("help")}
        if kind == "bool":
            parser.add_argument(_flag(f.name), action=argparse.BooleanOptionalAction, **common)
            continue
        extra = {"choices": f.metadata.get("choices"), "metavar": f.metadata.get("metavar")}
        action = "append" if kind == "list" else "store"
        parser.add_argument(_flag(f.name), type=element, action=action, **common, **{k: v for k, v in extra.items() if v})


def config_from_args(args: argparse.Namespace, **defaults: Any) -> TrainConfig:
    """The TrainConfig of parsed `add_config_arguments` flags; `defaults` fill the unset ones."""
    given = {f.name: getattr(args, f.name) for f, _, _ in _config_fields() if getattr(args, f.name, None) is not None}
    return TrainConfig(**{**defaults, **given})
