"""Every finding code the product can emit is listed in docs/findings.md, and the table lists no code
the product cannot emit: scripts match on codes, so the doc is their contract.

Codes are read from the source as text: a kebab-case literal, or a constant holding one, given as the code
of ``error(...)``, ``warning(...)``, ``Finding(severity, ...)``, readiness's ``_finding(...)``, a
planner refusal (``code=...``), or ``self.warn(...)`` of the planner, or a refusal's default code.
"""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SOURCE = ROOT / "src" / "shimshift"
DOC = ROOT / "docs" / "findings.md"

CODE = r"[a-z][a-z0-9]*(?:-[a-z0-9]+)*"
# The first argument (or the code= keyword) of the calls that make a finding or a refusal.
USE = re.compile(
    r"(?:\berror|\bwarning|\bwarn|\b_finding|\b_refuse|\bFinding|\bcls)\(\s*(?:(?:Severity\.\w+|severity),\s*)?"
    r"(?P<first>\"" + CODE + r"\"|[A-Z_]+)[,)]"
    r"|\bcode=(?P<keyword>\"" + CODE + r"\"|[A-Z_]+)"
    r"|\bcode: str = (?P<default>[A-Z_]+)"
    r"|\bcode = (?P<chosen>\"" + CODE + r"\" if \w+ else \"" + CODE + r"\")"
)
CONSTANT = re.compile(r"^(?P<name>[A-Z_]+) = \"(?P<value>" + CODE + r")\"", re.MULTILINE)


def emitted_codes() -> set[str]:
    texts = {path: path.read_text() for path in SOURCE.rglob("*.py")}
    constants = {match["name"]: match["value"] for text in texts.values() for match in CONSTANT.finditer(text)}
    codes: set[str] = set()
    for text in texts.values():
        for match in USE.finditer(text):
            given = next(value for value in match.groupdict().values() if value is not None)
            codes.update(re.findall(r"\"(" + CODE + r")\"", given))
            codes.update(constants[name] for name in re.findall(r"\b[A-Z_]+\b", given) if name in constants)
    return codes


def documented_codes() -> set[str]:
    return set(re.findall(r"^\| `(" + CODE + r")` \|", DOC.read_text(), re.MULTILINE))


def test_every_code_the_product_emits_is_documented() -> None:
    codes = emitted_codes()
    assert {"docker-inactive", "refused", "plan-note", "node-not-ready", "flag-removed"} <= codes  # the scan sees
    assert codes - documented_codes() == set()


def test_the_doc_lists_no_code_the_product_cannot_emit() -> None:
    assert documented_codes() - emitted_codes() == set()
