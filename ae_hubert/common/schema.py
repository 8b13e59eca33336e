"""One reader for the project's YAML kinds: a dataclass is the schema.

Schedules (``config/schedule/``) and studies (``config/study/``) are dataclasses whose fields are the
YAML's keys, typed as fairseq types its configs; :func:`read` turns a loaded OmegaConf node into an
instance. Scalars are converted by OmegaConf's own typed nodes (``"7"`` reads as 7, ``2.5`` is not an
integer, ``"false"`` is false); this module adds what a hand-edited file needs: every error is one line
naming the field's path (``standard.yaml: iterations[1].targets[0].k: must be >= 2, got 1``), an
unknown key or choice gets a did-you-mean, and a field's bounds live beside it (:func:`spec`).
Semantic checks that need more than one field (a layer against the previous model's depth) stay with
the kind that owns them.
"""
from __future__ import annotations

import copy
import dataclasses
import difflib
import types
import typing
from typing import Any, Callable

import yaml
from omegaconf import DictConfig, FloatNode, IntegerNode, ListConfig, OmegaConf
from omegaconf.errors import OmegaConfBaseException, ValidationError

from .arguments import FILE_NAME
from .errors import AeHubertError
from .text import BOM, refuse_bom


class SchemaError(AeHubertError):
    pass


def spec(default: Any = dataclasses.MISSING, *, minimum: float | None = None, maximum: float | None = None,
         choices: tuple[str, ...] | None = None, check: Callable[[Any], str | None] | None = None,
         nonempty: bool = False, derived: bool = False, expected: str | None = None):
    """A schema field: its default (a list, dict or dataclass default is copied per instance), bounds
    (for a list, of each item), allowed ``choices``, ``check(value)`` returning a complaint or None,
    ``nonempty`` for lists and mappings, ``expected`` (what a wrong type is told it should be);
    ``derived`` marks a field the loader fills in, which the YAML may not set."""
    meta = {"minimum": minimum, "maximum": maximum, "choices": choices, "check": check, "nonempty": nonempty,
            "derived": derived, "expected": expected}
    if isinstance(default, (list, dict)) or dataclasses.is_dataclass(default):
        return dataclasses.field(default_factory=lambda d=default: copy.deepcopy(d), metadata=meta)
    return dataclasses.field(default=default, metadata=meta)


def load_yaml(path: str, kind: str, error: type[AeHubertError]):
    """A YAML file as an OmegaConf node; a file that does not parse is one line naming the file and
    line (``s.yaml:3: not a readable YAML schedule (found duplicate key seed)``)."""
    try:
        with open(path, "rb") as f:
            refuse_bom(path, f.read(len(BOM)), "would become part of its first key")
    except OSError:
        pass  # OmegaConf.load names what is wrong with the file
    except AeHubertError as e:
        raise error(str(e)) from None
    try:
        return OmegaConf.load(path)
    except yaml.MarkedYAMLError as e:
        mark = e.problem_mark or e.context_mark
        where = f"{path}:{mark.line + 1}" if mark is not None else path
        problem = " ".join(str(e.problem or e.context or type(e).__name__).split())
        raise error(f"{where}: not a readable YAML {kind} ({problem})") from None
    except (OmegaConfBaseException, OSError, ValueError, yaml.YAMLError) as e:
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise error(f"{path}: not a readable YAML {kind} ({first})") from None


def keys(cls) -> tuple[str, ...]:
    """The keys a YAML mapping of this schema may have."""
    return tuple(f.name for f in dataclasses.fields(cls) if not f.metadata.get("derived"))


def read(cls, node, source: str, path: str = "", error: type[AeHubertError] = SchemaError):
    """``node`` (an OmegaConf mapping, or None for all defaults) as an instance of the dataclass
    ``cls``; ``source`` (the file's name) and ``path`` prefix every message; errors are ``error``."""
    return _Reader(source, error).dataclass(cls, OmegaConf.create({}) if node is None else node, path)


def file_name(value: str) -> str | None:
    """A field check for names that become directory and file names: plain words, no paths."""
    if len(value) > 100:
        return f"{value[:20]!r}...: {len(value)} characters; at most 100 (it names files in the work dir)"
    if not FILE_NAME.fullmatch(value):
        return (f"{value!r} must be letters, digits, '_' or '-' (it names files in the work dir), not starting "
                "with '-'")
    return None


def show(value) -> str:
    """A value as the YAML would write it."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    return repr(OmegaConf.to_container(value) if OmegaConf.is_config(value) else value)


def did_you_mean(word: str, known) -> str:
    close = difflib.get_close_matches(str(word), [str(k) for k in known], n=1)
    return f" (did you mean {close[0]}?)" if close else f"; known: {', '.join(map(str, known))}"


class _Reader:
    def __init__(self, source: str, error: type[AeHubertError]):
        self.source, self.error = source, error

    def fail(self, path: str, message: str):
        raise self.error(f"{self.source}: {path}: {message}" if path else f"{self.source}: {message}")

    def get(self, node, key, where: str):
        """``node[key]``, an ``${interpolation}`` resolved; one that does not resolve names the field."""
        try:
            return node[key]
        except OmegaConfBaseException as e:
            first = (str(e).strip().splitlines() or [type(e).__name__])[0]
            self.fail(where, first)

    def dataclass(self, cls, node, path: str):
        known = keys(cls)
        if not isinstance(node, DictConfig):
            self.fail(path, f"expected a mapping of {', '.join(known)}, got {show(node)}")
        for key in node.keys():
            if key not in known:
                hint = " (YAML reads an unquoted on/off/yes/no as true/false)" if isinstance(key, bool) else ""
                shown = repr(key) if isinstance(key, str) and key != key.strip() else key
                self.fail(_join(path, shown), "unknown key" + did_you_mean(key, known) + hint)
        hints = typing.get_type_hints(cls)
        values = {}
        for f in dataclasses.fields(cls):
            if f.metadata.get("derived"):
                continue
            where = _join(path, f.name)
            value = self.get(node, f.name, where) if f.name in node else None
            if value is None:  # absent or null: the default
                if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING:
                    self.fail(where, "required")
                continue
            values[f.name] = self.value(hints[f.name], value, where, f.metadata)
        return cls(**values)

    def value(self, hint, value, where: str, meta):
        origin, args = typing.get_origin(hint), typing.get_args(hint)
        if value is None:  # a null inside a list or mapping (a field's own null is its default)
            self.fail(where, f"expected {meta.get('expected') or _describe(hint)}, got null")
        if origin in (typing.Union, types.UnionType):
            options = [a for a in args if a is not type(None)]
            if len(options) == 1:
                return self.value(options[0], value, where, meta)
            return self.union(options, value, where, meta)
        if dataclasses.is_dataclass(hint):
            return self.dataclass(hint, value, where)
        if origin is list:
            if not isinstance(value, ListConfig):
                self.fail(where, f"expected a list, got {show(value)}")
            if meta.get("nonempty") and len(value) == 0:
                self.fail(where, "empty")
            return [self.value(args[0], self.get(value, i, f"{where}[{i}]"), f"{where}[{i}]", meta)
                    for i in range(len(value))]
        if origin is dict:
            if not isinstance(value, DictConfig):
                self.fail(where, f"expected a mapping, got {show(value)}")
            if meta.get("nonempty") and len(value) == 0:
                self.fail(where, "empty")
            return {str(k): self.value(args[1], self.get(value, k, _join(where, k)), _join(where, k), {})
                    for k in value.keys()}
        if hint is typing.Any:
            if OmegaConf.is_config(value):
                try:
                    return OmegaConf.to_container(value, resolve=True)
                except OmegaConfBaseException as e:
                    self.fail(where, (str(e).strip().splitlines() or [type(e).__name__])[0])
            return value
        return self.checked(self.scalar(hint, value, where, meta), where, meta)

    def union(self, options, value, where: str, meta):
        """A scalar of one of several types (e.g. ``int | str``: a layer number or ``auto``): taken as
        the type it already has."""
        for t in options:
            if isinstance(value, t) and not (t is int and isinstance(value, bool)):
                return self.checked(value, where, meta)
        self.fail(where, f"expected {meta.get('expected') or ' or '.join(_NAMES[t] for t in options)}, "
                         f"got {show(value)}")

    def scalar(self, t, value, where: str, meta):
        expected = meta.get("expected") or _NAMES[t]
        if OmegaConf.is_config(value):
            self.fail(where, f"expected {expected}, got {show(value)}")
        if t is str:
            if not isinstance(value, str):  # YAML reads 010 as 8 and 1:30 as 90: text must be quoted
                self.fail(where, f"expected {expected}, got {show(value)} (quote it if it is text)")
            return value
        if t is bool:  # OmegaConf would also read 3 and "10" as true
            if isinstance(value, str) and value.lower() in _BOOLEAN_WORDS:
                return _BOOLEAN_WORDS[value.lower()]
            if not isinstance(value, bool):
                self.fail(where, f"expected {expected}, got {show(value)}")
            return value
        try:
            return {int: IntegerNode, float: FloatNode}[t](value)._value()
        except ValidationError:
            self.fail(where, f"expected {expected}, got {show(value)}")

    def checked(self, value, where: str, meta):
        low, high, choices, check = (meta.get(k) for k in ("minimum", "maximum", "choices", "check"))
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            if low is not None and value < low:
                self.fail(where, f"must be >= {low}, got {value}")
            if high is not None and value > high:
                self.fail(where, f"must be <= {high}, got {value}")
        if choices is not None and value not in choices:
            self.fail(where, f"{value!r} is not one of {', '.join(choices)}" +
                      (did_you_mean(value, choices).split(";")[0] if difflib.get_close_matches(
                          str(value), choices, n=1) else ""))
        complaint = check(value) if check is not None else None
        if complaint:
            self.fail(where, complaint)
        return value


_NAMES = {int: "an integer", float: "a number", bool: "true or false", str: "a string"}
_BOOLEAN_WORDS = {"true": True, "false": False, "yes": True, "no": False, "on": True, "off": False}


def _describe(hint) -> str:
    """What a value of this type is, in words (for a null where one was expected)."""
    if typing.get_origin(hint) in (typing.Union, types.UnionType):
        return " or ".join(_describe(a) for a in typing.get_args(hint) if a is not type(None))
    if typing.get_origin(hint) is list:
        return "a list"
    if typing.get_origin(hint) is dict or dataclasses.is_dataclass(hint):
        return "a mapping"
    return _NAMES.get(hint, "a value")


def _join(path: str, key) -> str:
    return f"{path}.{key}" if path else str(key)
