"""Tests of the .vec reader (tests/vectorfile.py) on inline samples and the shipped files."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.vectorfile import KINDS, Vector, VectorFileError, load_vectors, parse_vector

SAMPLE = """\
# a comment line
name: sample
kind: hkreq
message_id: 7
coa: 2001:db8::100   # a value may hold ':'; text after '#' is a comment
hmk: 0001 # trailing comment
bytes:
3b          # [0] Payload Proto
# a comment inside the data
0c fa       # two octets, space between them
00 00 00    # [3-5]

end
# only comments after end
"""


def test_sample_parses_to_fields_and_bytes() -> None:
    vector = parse_vector(SAMPLE, "sample.vec")
    assert vector == Vector(
        name="sample",
        kind="hkreq",
        fields={"message_id": "7", "coa": "2001:db8::100", "hmk": "0001"},
        data=bytes.fromhex("3b0cfa000000"),
    )
    assert vector.integer("message_id") == 7
    assert vector.hex("hmk") == b"\x00\x01"


def test_uppercase_hex_is_accepted() -> None:
    assert parse_vector(SAMPLE.replace("0c fa", "0C FA")).data == bytes.fromhex("3b0cfa000000")


@pytest.mark.parametrize(
    ("old", "new", "line", "reason"),
    [
        ("0c fa", "0c fz", 10, "not hex"),
        ("0c fa", "0c f", 10, "odd number of hex digits"),
        ("message_id: 7", "message_id 7", 4, "expected 'key: value'"),
        ("hmk: 0001", "message_id: 8", 6, "given twice"),
        ("hmk: 0001", "hmk:", 6, "has no value"),
        ("bytes:", "bytes: 3b", 7, "takes no value"),
        ("# only comments after end", "3b", 14, "text after 'end'"),
        ("kind: hkreq", "kind: hkrequest", 14, "unknown kind"),
        ("name: sample", "# no name", 14, "no 'name' field"),
    ],
)
def test_malformed_file_names_file_and_line(old: str, new: str, line: int, reason: str) -> None:
    assert old in SAMPLE
    with pytest.raises(VectorFileError) as caught:
        parse_vector(SAMPLE.replace(old, new), "broken.vec")
    assert (caught.value.source, caught.value.line) == ("broken.vec", line)
    assert str(caught.value).startswith(f"broken.vec, line {line}: ")
    assert reason in str(caught.value)


@pytest.mark.parametrize(("cut_at", "missing"), [("bytes:", "'bytes:'"), ("end", "'end'")])
def test_file_ending_early_is_an_error(cut_at: str, missing: str) -> None:
    text = SAMPLE[: SAMPLE.index(cut_at)]
    with pytest.raises(VectorFileError, match=f"short.vec, line .*file ends before {missing}"):
        parse_vector(text, "short.vec")


def test_load_vectors_checks_name_against_file_name(tmp_path: Path) -> None:
    (tmp_path / "other.vec").write_text(SAMPLE)
    with pytest.raises(VectorFileError, match=r"other\.vec, line 1: name 'sample' differs"):
        load_vectors(directory=tmp_path)


def test_load_vectors_filters_by_kind(tmp_path: Path) -> None:
    (tmp_path / "sample.vec").write_text(SAMPLE)
    (tmp_path / "g.vec").write_text(
        SAMPLE.replace("name: sample", "name: g").replace("hkreq", "gprf")
    )
    assert [v.name for v in load_vectors(directory=tmp_path)] == ["g", "sample"]
    assert [v.name for v in load_vectors("hkreq", directory=tmp_path)] == ["sample"]
    with pytest.raises(ValueError, match="unknown kind"):
        load_vectors("hkrequest", directory=tmp_path)


def test_shipped_vectors_all_parse() -> None:
    vectors = load_vectors()
    assert {v.kind for v in vectors} == KINDS
    for vector in vectors:
        assert vector.data, vector.name
        if vector.kind == "malformed":
            assert vector.fields.get("error"), vector.name
        if vector.kind in ("hkreq", "hkresp"):
            # P2: the Mobility Header length is (Header Len + 1) * 8 octets
            assert len(vector.data) == (vector.data[1] + 1) * 8, vector.name
