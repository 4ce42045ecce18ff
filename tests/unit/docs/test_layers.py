"""The import directions docs/architecture.md states hold in the tree: `cli` → `orchestrator` → `adapters` →
`core`, `core` imports none of the others, `lab` only `core`, and of `cli` only `cli/lab_cmd.py` imports `lab`.

Read with ``ast`` (imports under ``TYPE_CHECKING`` count too: a type that reaches upwards is a dependency
all the same), never by importing the modules.
"""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[3] / "src" / "shimshift"

# Each layer, and the layers its modules may import (itself included).
ALLOWED: dict[str, frozenset[str]] = {
    "core": frozenset({"core"}),
    "adapters": frozenset({"adapters", "core"}),
    "orchestrator": frozenset({"orchestrator", "adapters", "core"}),
    "lab": frozenset({"lab", "core"}),
    "cli": frozenset({"cli", "orchestrator", "adapters", "core", "lab"}),
}


def imported_layers(source: str) -> set[str]:
    """The layers of shimshift a module's source imports (``shimshift.<layer>...``)."""
    out: set[str] = set()
    for node in ast.walk(ast.parse(source)):
        names: list[str] = []
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names = [node.module] + [f"{node.module}.{alias.name}" for alias in node.names]
        for name in names:
            parts = name.split(".")
            if parts[0] == "shimshift" and len(parts) > 1 and parts[1] in ALLOWED:
                out.add(parts[1])
    return out


def upward_imports(layer: str, source: str) -> set[str]:
    return imported_layers(source) - ALLOWED[layer]


def test_no_import_runs_upwards() -> None:
    wrong = []
    for layer in ALLOWED:
        for module in sorted((PACKAGE / layer).rglob("*.py")):
            bad = upward_imports(layer, module.read_text(encoding="utf-8"))
            if bad:
                wrong.append(f"{module.relative_to(PACKAGE)} imports {sorted(bad)}")
    assert not wrong, "imports against the layers of docs/architecture.md:\n" + "\n".join(wrong)


def test_only_the_lab_command_imports_the_lab() -> None:
    # The product never needs the lab: of cli, only `shimshift lab` reaches it.
    importers = sorted(
        str(module.relative_to(PACKAGE))
        for module in (PACKAGE / "cli").rglob("*.py")
        if "lab" in imported_layers(module.read_text(encoding="utf-8"))
    )
    assert importers == ["cli/lab_cmd.py"]


def test_every_layer_of_the_package_is_checked() -> None:
    layers = {p.name for p in PACKAGE.iterdir() if p.is_dir() and (p / "__init__.py").exists()}
    assert layers == set(ALLOWED)


def test_the_check_sees_an_upward_import() -> None:
    source = (
        "from typing import TYPE_CHECKING\n"
        "from shimshift.core.findings import Finding\n"
        "import shimshift.adapters.journal\n"
        "if TYPE_CHECKING:\n"
        "    from shimshift.orchestrator.session import Connection\n"
        "from shimshift import cli\n"
    )
    assert upward_imports("core", source) == {"adapters", "orchestrator", "cli"}
    assert upward_imports("adapters", source) == {"orchestrator", "cli"}
    assert upward_imports("cli", source) == set()
