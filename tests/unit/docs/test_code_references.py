"""Every module path and name the docs point at exists in the tree, so a newcomer following one is not lost.

Checked in docs/architecture.md: each backticked path (``core/steps.py``, ``core/procedures/``; under
``src/shimshift/`` or the repository's root) exists, and each backticked name that follows a ``.py`` path
on the same line (``core/steps.py`` ``remaining_steps``, ``Step.VERIFY``) is defined at the top of that
module (a function, a class, an assignment; a dotted name: an attribute of that class). In every other
page of docs/ and the README, each backticked path into the repository exists (the names there are prose).

The source is read with ``ast``, never imported: a reference is checked without running the module.
"""

from __future__ import annotations

import ast
import re
from functools import cache
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[3]
PACKAGE = ROOT / "src" / "shimshift"
ARCHITECTURE = ROOT / "docs" / "architecture.md"
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]

# The first folder of a path into this repository (a path of another project, such as kubectl's
# pkg/drain/drain.go or asyncssh/crypto/misc.py, starts otherwise and is not ours to check).
OUR_ROOTS = frozenset(
    {"core", "adapters", "orchestrator", "cli", "lab", "src", "tests", "scripts", "benchmarks", "deploy", "docs"}
)
TICKED = re.compile(r"`([^`\n]+)`")
PATH = re.compile(r"^[\w.-]+(/[\w.-]+)*(/|\.py|\.sh|\.md|\.yaml|\.toml)$")
NAME = re.compile(r"^[A-Za-z_]\w*(\.[A-Za-z_]\w*)?$")


def _is_ours(path: str) -> bool:
    return "/" in path and path.split("/", 1)[0] in OUR_ROOTS


def _resolve(path: str) -> Path | None:
    for base in (PACKAGE, ROOT):
        candidate = base / path
        if candidate.exists():
            return candidate
    return None


@cache
def _defined(module: Path) -> dict[str, frozenset[str]]:
    """The module's top-level names, each with the names its class body defines (empty for the others)."""
    tree = ast.parse(module.read_text(encoding="utf-8"))
    out: dict[str, frozenset[str]] = {}
    for node in tree.body:
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            out[node.name] = frozenset()
        elif isinstance(node, ast.ClassDef):
            members = set()
            for item in node.body:
                if isinstance(item, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
                    members.add(item.name)
                elif isinstance(item, ast.Assign):
                    members.update(t.id for t in item.targets if isinstance(t, ast.Name))
                elif isinstance(item, ast.AnnAssign) and isinstance(item.target, ast.Name):
                    members.add(item.target.id)
            out[node.name] = frozenset(members)
        elif isinstance(node, ast.Assign):
            out.update((t.id, frozenset()) for t in node.targets if isinstance(t, ast.Name))
        elif isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
            out[node.target.id] = frozenset()
    return out


def broken_references(text: str, *, names: bool) -> list[str]:
    """Each reference in ``text`` (a page's Markdown) that points at nothing, as "line N: why"."""
    broken = []
    for number, line in enumerate(text.splitlines(), start=1):
        module: Path | None = None
        for token in TICKED.findall(line):
            if PATH.match(token) and _is_ours(token):
                found = _resolve(token)
                if found is None:
                    broken.append(f"line {number}: `{token}` does not exist")
                module = found if found is not None and found.suffix == ".py" else None
            elif names and module is not None and NAME.match(token):
                top, _, member = token.partition(".")
                defined = _defined(module)
                if top not in defined or (member and member not in defined[top]):
                    where = module.relative_to(PACKAGE if module.is_relative_to(PACKAGE) else ROOT)
                    broken.append(f"line {number}: `{token}` is not defined in {where}")
    return broken


def test_architecture_names_exist() -> None:
    broken = broken_references(ARCHITECTURE.read_text(encoding="utf-8"), names=True)
    assert not broken, "docs/architecture.md points at what is not there:\n" + "\n".join(broken)


def test_architecture_names_every_rule_module_of_core() -> None:
    # A core module the page never names is a rule a newcomer cannot find from it.
    text = ARCHITECTURE.read_text(encoding="utf-8")
    modules = sorted(str(p.relative_to(PACKAGE)) for p in (PACKAGE / "core").rglob("*.py") if p.name != "__init__.py")
    missing = [m for m in modules if f"`{m}`" not in text]
    assert not missing, f"core modules docs/architecture.md does not name: {missing}"


@pytest.mark.parametrize("page", PAGES, ids=lambda p: str(p.relative_to(ROOT)))
def test_paths_in_docs_exist(page: Path) -> None:
    broken = broken_references(page.read_text(encoding="utf-8"), names=False)
    assert not broken, f"{page.relative_to(ROOT)} points at paths that are not there:\n" + "\n".join(broken)


def test_the_check_fails_on_a_wrong_reference() -> None:
    # The checks above pass only because the page is right, not because they cannot fail.
    text = (
        "- Fine: `core/steps.py` `remaining_steps`, `Step.VERIFY`.\n"
        "- Moved: `adapters/kube/health.py` `evaluate_health`.\n"
        "- Gone: `core/no_such_module.py` `anything`.\n"
        "- No member: `core/steps.py` `Step.NO_SUCH_STEP`.\n"
        "- Not ours: `pkg/drain/drain.go`, `asyncssh/crypto/misc.py`.\n"
    )
    assert broken_references(text, names=True) == [
        "line 2: `evaluate_health` is not defined in adapters/kube/health.py",
        "line 3: `core/no_such_module.py` does not exist",
        "line 4: `Step.NO_SUCH_STEP` is not defined in core/steps.py",
    ]
    assert broken_references(text, names=False) == ["line 3: `core/no_such_module.py` does not exist"]
