"""docs/conformance.md covers every normative sentence of the draft's §5 to §7, and every
test it names exists (issue 5). A row either names tests or says why none applies."""

from __future__ import annotations

import pathlib
import re

ROOT = pathlib.Path(__file__).resolve().parent.parent
DRAFT_CANDIDATES = [
    ROOT / "docs" / "draft-vidya-mipshop-handover-keys-aaa-04.txt",
    ROOT.parent / "shared" / "spec" / "draft-vidya-mipshop-handover-keys-aaa-04.txt",
]
TABLE = ROOT / "docs" / "conformance.md"
KEYWORDS = re.compile(r"\b(MUST|SHOULD|MAY)\b")
TEST_REF = re.compile(r"`?(tests/[\w/]+\.py)::(\w+)`?")


def _draft_text() -> str:
    for path in DRAFT_CANDIDATES:
        if path.exists():
            return path.read_text()
    raise AssertionError("the draft text is missing: expected docs/draft-...-04.txt")


def _normalise(sentence: str) -> str:
    return re.sub(r"[^a-z0-9]+", " ", sentence.lower()).strip()


def normative_sentences(text: str) -> list[str]:
    """Every sentence of §5 to §7 with MUST, SHOULD or MAY (the draft's text is reflowed,
    so sentences are split on punctuation followed by a capital letter or a bullet)."""
    body = text[text.index("5. Message Formats\n This") : text.index("8. IANA Considerations\n")]
    flat = " ".join(body.split())
    sentences = re.split(r"(?<=[.!?,:])\s+(?=[A-Z(o])", flat)
    return [s for s in sentences if KEYWORDS.search(s)]


def _rows() -> list[list[str]]:
    rows = []
    for line in TABLE.read_text().splitlines():
        if re.match(r"\|\s*R\d+\s*\|", line):
            rows.append([cell.strip() for cell in line.strip().strip("|").split("|")])
    return rows


def test_every_normative_sentence_has_a_row() -> None:
    sentences = normative_sentences(_draft_text())
    assert len(sentences) >= 90
    table = _normalise(TABLE.read_text())
    missing = []
    for sentence in sentences:
        # The row quotes the requirement's own words: its keyword and what follows.
        keyword = KEYWORDS.search(sentence)
        assert keyword
        core = _normalise(sentence[max(0, keyword.start() - 60) : keyword.end() + 60])
        words = core.split()
        probe = " ".join(words[1:-1]) if len(words) > 4 else core
        if probe not in table:
            missing.append(sentence[:120])
    assert not missing, "rows missing for:\n" + "\n".join(missing)


def test_every_row_names_existing_tests_or_a_reason() -> None:
    rows = _rows()
    assert len(rows) >= 90
    problems = []
    for row in rows:
        ident, tests_cell, notes = row[0], row[3], row[4] if len(row) > 4 else ""
        refs = TEST_REF.findall(tests_cell)
        if not refs and not notes.lower().startswith(("n/a", "not tested")):
            problems.append(f"{ident}: no test and no reason")
        for path, name in refs:
            source = ROOT / path
            if not source.exists():
                problems.append(f"{ident}: {path} does not exist")
            elif not re.search(rf"^\s*(async )?def {name}\(", source.read_text(), re.M):
                problems.append(f"{ident}: {path} has no test {name}")
    assert not problems, "\n".join(problems)
