"""The one YAML reader (common/schema.py): a dataclass is the schema; every error one line naming the
field's path, with a did-you-mean for unknown keys and choices."""
from dataclasses import dataclass

import pytest
from omegaconf import OmegaConf

from ae_hubert.common.schema import SchemaError, file_name, keys, read, spec


@dataclass
class Leaf:
    k: int = spec(minimum=2)
    layer: int | str | None = None
    mode: str = spec("fast", choices=("fast", "exact"))
    ids: list[int] = spec([], minimum=0)


@dataclass
class Root:
    leaves: list[Leaf] = spec(nonempty=True)
    name: str | None = spec(None, check=file_name)
    rate: float = 1.0
    enabled: bool = True
    options: dict[str, str] = spec({})
    filled_later: int = spec(0, derived=True)


def load(text):
    return read(Root, OmegaConf.create(text), "f.yaml")


def test_a_good_file_reads_as_the_dataclass_with_defaults_and_conversions():
    r = load("leaves: [{k: '7', layer: auto}, {k: 3, layer: 2, ids: [0, 4]}]\nrate: 2\nenabled: 'false'\n"
             "options: {a: x}")
    assert r == Root(leaves=[Leaf(7, "auto"), Leaf(3, 2, ids=[0, 4])], rate=2.0, enabled=False, options={"a": "x"})
    assert isinstance(r.rate, float) and r.leaves[0].ids is not r.leaves[1].ids  # defaults copied, not shared
    assert keys(Root) == ("leaves", "name", "rate", "enabled", "options")  # a derived field is not the YAML's


@pytest.mark.parametrize("text, message", [
    ("leaves: [{k: 3}]\nnmae: x", "f.yaml: nmae: unknown key (did you mean name?)"),
    ("leaves: [{k: 3}, {kk: 3}]", "f.yaml: leaves[1].kk: unknown key (did you mean k?)"),
    ("leaves: [{k: 3, mode: exakt}]", "f.yaml: leaves[0].mode: 'exakt' is not one of fast, exact (did you mean exact?)"),
    ("leaves: [{k: 3, mode: slow}]", "f.yaml: leaves[0].mode: 'slow' is not one of fast, exact"),
    ("leaves: [{k: 1}]", "f.yaml: leaves[0].k: must be >= 2, got 1"),
    ("leaves: [{k: 2.5}]", "f.yaml: leaves[0].k: expected an integer, got 2.5"),
    ("leaves: [{k: true}]", "f.yaml: leaves[0].k: expected an integer, got true"),
    ("leaves: [{k: 3, ids: [1, -1]}]", "f.yaml: leaves[0].ids[1]: must be >= 0, got -1"),
    ("leaves: [{k: 3, layer: [1]}]", "f.yaml: leaves[0].layer: expected an integer or a string, got [1]"),
    ("leaves: [{layer: 3}]", "f.yaml: leaves[0].k: required"),
    ("leaves: []", "f.yaml: leaves: empty"),
    ("leaves: 3", "f.yaml: leaves: expected a list, got 3"),
    ("leaves: [3]", "f.yaml: leaves[0]: expected a mapping of k, layer, mode, ids, got 3"),
    ("leaves: [{k: 3}]\nenabled: 1", "f.yaml: enabled: expected true or false, got 1"),
    ("leaves: [{k: 3}]\nenabled: perhaps", "f.yaml: enabled: expected true or false, got 'perhaps'"),
    ("leaves: [{k: 3}]\nname: true", "f.yaml: name: expected a string, got true"),
    ("leaves: [{k: 3}]\nname: a/b", "f.yaml: name: 'a/b' must be letters"),
    ("leaves: [{k: 3}]\nrate: [1]", "f.yaml: rate: expected a number, got [1]"),
    ("leaves: [{k: 3}]\noptions: [1]", "f.yaml: options: expected a mapping, got [1]"),
    ("leaves: [{k: 3}]\nfilled_later: 3", "f.yaml: filled_later: unknown key"),
    ("- 1", "f.yaml: expected a mapping of leaves, name, rate, enabled, options, got [1]"),
    ("leaves: [{k: 3, ids: [0, null]}]", "f.yaml: leaves[0].ids[1]: expected an integer, got null"),
    ("leaves: [null]", "f.yaml: leaves[0]: expected a mapping, got null"),
    ("leaves: [{k: 3}]\nenabled: '10'", "f.yaml: enabled: expected true or false, got '10'"),
    ("leaves: [{k: 3}]\nname: 010", "f.yaml: name: expected a string, got 8 (quote it if it is text)"),
    ("leaves: [{k: 3}]\noptions: {a: 1}", "f.yaml: options.a: expected a string, got 1"),
    ("leaves:\n  - k: ${nope}", "f.yaml: leaves[0].k: Interpolation key 'nope' not found"),
    ("leaves: [{k: 3}]\nyes: 1", "f.yaml: True: unknown key; known: leaves, name, rate, enabled, options (YAML reads"),
    ("leaves: [{k: 3}]\nname: " + "a" * 101, "f.yaml: name: 'aaaaaaaaaaaaaaaaaaaa'...: 101 characters; at most 100"),
])
def test_errors_are_one_line_naming_the_field(text, message):
    with pytest.raises(SchemaError) as e:
        load(text)
    assert str(e.value).startswith(message) and "\n" not in str(e.value), str(e.value)


def test_a_file_that_does_not_parse_names_the_line(tmp_path):
    from ae_hubert.common.schema import load_yaml

    p = tmp_path / "s.yaml"
    p.write_text("name: a\nseed: 1\nseed: 2\n")
    with pytest.raises(SchemaError) as e:
        load_yaml(str(p), "schedule", SchemaError)
    assert str(e.value) == f"{p}:3: not a readable YAML schedule (found duplicate key seed)"
    p.write_text("iterations: [\n  - {targets: \n")
    with pytest.raises(SchemaError, match=r"s\.yaml:2: not a readable YAML schedule \(") as e:
        load_yaml(str(p), "schedule", SchemaError)
    assert "\n" not in str(e.value)


def test_a_yaml_behind_a_byte_order_mark_is_named(tmp_path):
    from ae_hubert.common.schema import load_yaml

    p = tmp_path / "s.yaml"
    p.write_bytes(b"\xef\xbb\xbfschedules: {H1: study_h1}\n")
    with pytest.raises(SchemaError, match=r"s.yaml:1: starts with a UTF-8 byte-order mark"):
        load_yaml(str(p), "study", SchemaError)
