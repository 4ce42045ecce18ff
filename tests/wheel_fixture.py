"""The package as a user gets it: a wheel built from this checkout, installed into a fresh venv outside it.

Built once per test session (the wheel and each venv), because building and installing take a minute
on this machine. Two venvs: one with the newest dependencies the wheel's ranges allow (what a user gets),
one with exactly requirements.lock (what scripts/setup.sh and CI install). The build runs on a copy of the
checkout, so the checkout gets no build/ or egg-info; the dependencies come from the package index the
machine's pip uses. Commands run from a directory outside the checkout with ``PYTHONPATH`` removed, so
nothing of the checkout can leak in.
"""

from __future__ import annotations

import atexit
import functools
import os
import shutil
import subprocess
import sys
import tempfile
import venv
from dataclasses import dataclass
from pathlib import Path

CHECKOUT = Path(__file__).resolve().parents[1]
_CACHES = shutil.ignore_patterns("*.egg-info", "__pycache__", ".mypy_cache", ".ruff_cache", ".pytest_cache")
# Only at the top: the lab's own build scripts live in src/shimshift/lab/assets/build.
_TOP_LEVEL_ONLY = {".git", ".venv", "build", "dist"}


def _not_shipped(directory: str, names: list[str]) -> set[str]:
    ignored = set(_CACHES(directory, names))
    if Path(directory) == CHECKOUT:
        ignored |= _TOP_LEVEL_ONLY & set(names)
    return ignored


@dataclass(frozen=True)
class InstalledWheel:
    wheel: Path
    venv: Path
    elsewhere: Path  # an empty directory outside the checkout, to run commands from

    @property
    def bin(self) -> Path:
        return self.venv / "bin"

    def env(self, **extra: str) -> dict[str, str]:
        env = {key: value for key, value in os.environ.items() if key not in {"PYTHONPATH", "VIRTUAL_ENV"}}
        env["PATH"] = f"{self.bin}{os.pathsep}{env.get('PATH', '')}"
        return {**env, **extra}

    def run(self, *argv: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            list(argv), cwd=self.elsewhere, env=self.env(), capture_output=True, text=True, timeout=timeout, check=False
        )


@functools.cache
def _built_wheel() -> tuple[Path, Path]:
    """The wheel, and the session's scratch directory it lies in."""
    base = Path(tempfile.mkdtemp(prefix="shimshift-wheel-"))
    atexit.register(shutil.rmtree, base, ignore_errors=True)
    source = base / "source"
    shutil.copytree(CHECKOUT, source, ignore=_not_shipped, symlinks=True)
    _check([sys.executable, "-m", "pip", "wheel", "--no-deps", "--quiet", "-w", str(base / "dist"), str(source)])
    (wheel,) = (base / "dist").glob("shimshift-*.whl")
    return wheel, base


def _install(name: str, *, lock: Path | None) -> InstalledWheel:
    wheel, base = _built_wheel()
    environment = base / name
    # No pip inside: the running pip installs into it (--python), which saves ensurepip's half minute.
    venv.EnvBuilder(with_pip=False).create(environment)
    pip = [sys.executable, "-m", "pip", "--python", str(environment / "bin" / "python"), "install", "--quiet"]
    if lock is None:
        _check([*pip, str(wheel)])
    else:
        # As scripts/setup.sh does; then the wheel alone (hash-checking mode would want a hash for it too).
        _check([*pip, "--require-hashes", "--only-binary", ":all:", "-r", str(lock)])
        _check([*pip, "--no-deps", str(wheel)])
    elsewhere = base / f"{name}-elsewhere"
    elsewhere.mkdir()
    return InstalledWheel(wheel, environment, elsewhere)


@functools.cache
def installed_wheel() -> InstalledWheel:
    """The wheel with the newest dependencies its ranges allow, as a user's environment has them."""
    return _install("venv", lock=None)


@functools.cache
def installed_from_lock() -> InstalledWheel:
    """The wheel on exactly the packages of requirements.lock, each checked against its hash."""
    return _install("venv-locked", lock=CHECKOUT / "requirements.lock")


def _check(argv: list[str]) -> None:
    env = {key: value for key, value in os.environ.items() if key != "PYTHONPATH"}
    result = subprocess.run(argv, capture_output=True, text=True, env=env, timeout=900, check=False)
    if result.returncode != 0:
        output = result.stdout[-3000:] + result.stderr[-3000:]
        raise RuntimeError(f"{' '.join(argv)} failed ({result.returncode}):\n{output}")
