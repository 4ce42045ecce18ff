"""The commands sent to nodes are exactly the declared ones, and the sudoers lines come from that list.

Matrix: every argv that the step machine, the node access or any other ``*access.run(...)`` call in
the package sends has a declared shape (program + subcommand) and every declared shape is sent (read
from the source with `ast`, so a new command cannot slip past); the scanner itself catches an
undeclared program and an argv it cannot read; `shape_of` on full paths and unknown subcommands; the
sudoers lines with a program missing on the node; the program lookup script against `shutil.which`.
"""

from __future__ import annotations

import ast
import subprocess
from dataclasses import dataclass
from pathlib import Path

import pytest

from shimshift.adapters.node_access import FIND_PROGRAMS_SCRIPT, find_programs_here
from shimshift.core.node_commands import (
    NODE_COMMANDS,
    PROGRAMS,
    SUDO_SECURE_PATH,
    UPGRADE_PROGRAMS,
    CommandShape,
    parse_found_programs,
    shape_of,
    sudoers_lines,
    sudoers_rule,
)

PACKAGE = Path(__file__).resolve().parents[3] / "src" / "shimshift"
# argv[0] given as a variable: what the variable holds. The migration procedure runs the cri-dockerd binary
# whose path it read from cri-docker.service's ExecStart.
DYNAMIC_PROGRAMS = {"binary": "cri-dockerd", "kubeadm": "kubeadm"}
# The upgrade procedure runs the Run actions its plan holds (built by command() in core/upgrade/, scanned there).
PLANNED_ARGV = {"command.argv", "action.argv"}
# The files that build planned commands with core/upgrade/binaries.py's command().
PLANNING_FILES = {
    "core/upgrade/binaries.py",
    "core/upgrade/plan.py",
    "core/upgrade/cri_dockerd_swap.py",
    "core/procedures/journey.py",
}
# A planned argv a method builds from a tuple literal: (program, subcommand) of that literal
# (core/journey/sequence.py KubeadmUpgrade.argv).
BUILT_ARGV = {"self.op.argv(self.kubeadm)": ("kubeadm", "upgrade")}
# core/upgrade/plan.py asks each binary its release with version_argv(binary, path): these argvs.
VERSION_QUERIES = [("kubeadm", "version"), ("kubelet", "--version"), ("kubectl", "version")]


@dataclass(frozen=True)
class Sent:
    where: str
    program: str
    subcommand: str | None  # None when argv[1] is absent or not a constant


class Unreadable(Exception):
    pass


def sent_commands(source: str, filename: str) -> list[Sent]:
    """Every argv a procedure yields (``run("prog", ...)``, ``act.Run((...))``) and every argv passed to
    ``<...>access.run([...])`` (and ``self.run`` in node_access.py) outside the executor's pass-through."""
    found = []
    for node in ast.walk(ast.parse(source)):
        if not isinstance(node, ast.Call):
            continue
        where = f"{filename}:{node.lineno}"
        if isinstance(node.func, ast.Name) and node.func.id == "run":  # core.actions.run(*argv)
            if not filename.startswith("core/procedures/"):
                continue  # another function called run (the CLI's coroutine runner)
            words: list[ast.expr] = list(node.args)
        elif isinstance(node.func, ast.Name) and node.func.id == "command" and filename in PLANNING_FILES:
            argv = node.args[0] if node.args else None
            if argv is not None and ast.unparse(argv) in BUILT_ARGV:
                found.append(Sent(where, *BUILT_ARGV[ast.unparse(argv)]))
                continue
            if isinstance(argv, ast.Call) and ast.unparse(argv.func) == "version_argv":
                found += [Sent(where, program, subcommand) for program, subcommand in VERSION_QUERIES]
                continue
            if isinstance(argv, ast.Call) and ast.unparse(argv.func) == "tuple" and "format_map" in ast.unparse(argv):
                continue  # the operator's --install-command: theirs to allow, not ours to declare
            if argv is not None and ast.unparse(argv) == "tuple(fields['argv'])":
                continue  # a plan read back from the journal: its commands were made by the lines above
            if not isinstance(argv, ast.Tuple) or not argv.elts:
                raise Unreadable(f"{where}: the argv is not a tuple literal, so its command cannot be checked")
            words = list(argv.elts)
        elif isinstance(node.func, ast.Attribute) and node.func.attr == "Run":  # core.actions.Run(argv)
            argv = node.args[0] if node.args else None
            if argv is not None and ast.unparse(argv) in PLANNED_ARGV:
                continue  # a planned command's argv: checked where core/upgrade/ builds it
            if not isinstance(argv, ast.Tuple | ast.List) or not argv.elts:
                raise Unreadable(f"{where}: the argv is not a tuple literal, so its command cannot be checked")
            words = list(argv.elts)
        elif isinstance(node.func, ast.Attribute) and node.func.attr == "run":
            receiver = ast.unparse(node.func.value)
            if not (receiver.endswith("access") or (receiver == "self" and filename.endswith("node_access.py"))):
                continue
            argv = node.args[0] if node.args else None
            if filename.endswith("executor.py") and argv is not None and ast.unparse(argv) == "list(argv)":
                continue  # performs a procedure's Run action: its argv was checked where it was yielded
            if not isinstance(argv, ast.List) or not argv.elts:
                raise Unreadable(f"{where}: the argv is not a list literal, so its command cannot be checked")
            words = list(argv.elts)
        else:
            continue
        if not words:
            raise Unreadable(f"{where}: no program")
        first = words[0]
        if isinstance(first, ast.Constant) and isinstance(first.value, str):
            program = first.value
        elif isinstance(first, ast.Name) and first.id in DYNAMIC_PROGRAMS:
            program = DYNAMIC_PROGRAMS[first.id]
        else:
            raise Unreadable(f"{where}: the program {ast.unparse(first)} is not a constant")
        second = words[1] if len(words) > 1 else None
        subcommand = second.value if isinstance(second, ast.Constant) and isinstance(second.value, str) else None
        found.append(Sent(where, program, subcommand))
    return found


def declared(sent: Sent) -> CommandShape | None:
    for shape in NODE_COMMANDS:
        if shape.program == sent.program and shape.subcommand in (None, sent.subcommand):
            return shape
    return None


def package_commands() -> list[Sent]:
    out = []
    for path in sorted(PACKAGE.rglob("*.py")):
        if "lab" in path.relative_to(PACKAGE).parts:
            continue  # the lab drives its node containers with docker exec, not through node access
        out += sent_commands(path.read_text(), str(path.relative_to(PACKAGE)))
    return out


def test_every_command_sent_to_a_node_is_declared() -> None:
    sent = package_commands()
    assert any(s.where.startswith("core/procedures/migration.py") for s in sent)
    assert any(s.where.startswith("adapters/node_access.py") for s in sent)
    undeclared = [f"{s.where}: {s.program} {s.subcommand or ''}" for s in sent if declared(s) is None]
    assert undeclared == [], "declare these in shimshift.core.node_commands.NODE_COMMANDS"


def test_every_declared_command_is_sent() -> None:
    used = {declared(s) for s in package_commands()}
    assert [shape for shape in NODE_COMMANDS if shape not in used] == []


def test_the_scanner_catches_an_undeclared_program_and_an_unreadable_argv() -> None:
    source = 'async def f(self, unit):\n    await self.access.run(["journalctl", "-u", unit])\n'
    [sent] = sent_commands(source, "x.py")
    assert (sent.where, sent.program, declared(sent)) == ("x.py:2", "journalctl", None)
    wrong_verb = sent_commands('self.access.run(["systemctl", "stop", "kubelet"])', "x.py")
    assert declared(wrong_verb[0]) is None
    with pytest.raises(Unreadable, match="not a list literal"):
        sent_commands("argv = ['rm']\naccess.run(argv)\n", "y.py")
    with pytest.raises(Unreadable, match="not a constant"):
        sent_commands("access.run([tool, '-x'])\n", "y.py")
    procedure = 'def g():\n    yield run("journalctl", "-u", unit)\n    yield act.Run(("rm", "-rf"))\n'
    yielded = sent_commands(procedure, "core/procedures/z.py")
    shapes = [(s.program, s.subcommand, declared(s)) for s in yielded]
    assert shapes == [("journalctl", "-u", None), ("rm", "-rf", None)]
    with pytest.raises(Unreadable, match="not a tuple literal"):
        sent_commands("yield act.Run(argv)\n", "core/procedures/z.py")


def test_shape_of() -> None:
    full_path = shape_of(["/usr/local/bin/cri-dockerd", "--version"])
    assert full_path is not None and (full_path.program, full_path.subcommand) == ("cri-dockerd", "--version")
    assert shape_of(["systemctl", "restart", "kubelet"]) is not None
    assert shape_of(["systemctl", "stop", "kubelet"]) is None
    assert shape_of(["cat", "--", "/etc/hosts"]) is not None
    assert shape_of(["rm", "-rf", "/"]) is None
    assert shape_of([]) is None


def test_sudoers_lines_name_every_program_by_its_path() -> None:
    paths: dict[str, str | None] = {p: f"/usr/bin/{p}" for p in PROGRAMS}
    paths["cri-dockerd"] = None
    lines = sudoers_lines("ops", paths)
    assert lines[-1] == "ops ALL=(root) NOPASSWD: " + ", ".join(f"/usr/bin/{p}" for p in PROGRAMS if p != "cri-dockerd")
    assert "# not found on the node, add their full paths: cri-dockerd" in lines
    assert any("group docker" in line for line in lines)
    assert sudoers_rule("ops", paths) == lines[-1]
    assert PROGRAMS == ("sh", "cat", "head", "test", "ls", "chmod", "docker", "ss", "cri-dockerd", "systemctl")
    # `sudoers --upgrade`: the migration's, then what the upgrade adds.
    added = ("crictl", "cp", "mv", "sha256sum", "kubeadm", "kubelet", "kubectl", "readlink")
    assert (*PROGRAMS, *added) == UPGRADE_PROGRAMS
    upgrade_rule = sudoers_rule("ops", {p: f"/usr/bin/{p}" for p in UPGRADE_PROGRAMS}, UPGRADE_PROGRAMS)
    assert upgrade_rule.endswith("/usr/bin/kubeadm, /usr/bin/kubelet, /usr/bin/kubectl, /usr/bin/readlink")


def test_parse_found_programs() -> None:
    assert parse_found_programs(["sh", "nope", "cat"], "/bin/sh\n\n/usr/bin/cat\n") == {
        "sh": "/bin/sh",
        "nope": None,
        "cat": "/usr/bin/cat",
    }
    assert parse_found_programs(["sh", "cat"], "/bin/sh") == {"sh": "/bin/sh", "cat": None}


def test_the_node_side_lookup_script_agrees_with_which_here() -> None:
    # The script that runs on the node, run by this machine's sh: it must find binaries (not the
    # shell's builtin `test`) exactly where shutil.which does on the same search path.
    programs = [*PROGRAMS, "no-such-program-here"]
    result = subprocess.run(
        ["sh", "-c", FIND_PROGRAMS_SCRIPT, "shimshift-find", SUDO_SECURE_PATH, *programs],
        capture_output=True,
        text=True,
        check=True,
        timeout=30,
    )
    found = parse_found_programs(programs, result.stdout)
    assert found == find_programs_here(programs)
    assert found["test"] is not None and found["test"].endswith("/test")
    assert found["no-such-program-here"] is None
