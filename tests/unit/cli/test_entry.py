"""The console script's warnings filter: cryptography's DSA deprecation from asyncssh is ignored, and nothing else.

Matrix: CryptographyDeprecationWarning from asyncssh's modules (ignored); the same category from another
module, one whose name only starts with "asyncssh", or shimshift (shown); another category from asyncssh
(shown); a user who asked for warnings with -W or PYTHONWARNINGS (everything shown). Each case runs inside
``warnings.catch_warnings``, so the process's filters are as they were afterwards.
"""

from __future__ import annotations

import sys
import warnings

import pytest
from cryptography.utils import CryptographyDeprecationWarning

from shimshift.cli.entry import quiet_asyncssh_dsa_deprecation

DSA_MESSAGE = "DSA is deprecated and support will be removed in a future release."


def _shown(category: type[Warning], module: str) -> bool:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        quiet_asyncssh_dsa_deprecation()
        # As cryptography raises it (stacklevel=2): attributed to the module that read the DSA attribute.
        warnings.warn_explicit(DSA_MESSAGE, category, filename=f"{module}.py", lineno=32, module=module)
    return len(caught) == 1


@pytest.fixture(autouse=True)
def _no_warning_options(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sys, "warnoptions", [])


@pytest.mark.parametrize("module", ["asyncssh.crypto.misc", "asyncssh.crypto.dsa", "asyncssh"])
def test_the_dsa_deprecation_from_asyncssh_is_ignored(module: str) -> None:
    assert not _shown(CryptographyDeprecationWarning, module)


@pytest.mark.parametrize("module", ["paramiko.dsskey", "asyncsshx.keys", "shimshift.adapters.ssh", "__main__"])
def test_the_same_category_from_elsewhere_is_shown(module: str) -> None:
    assert _shown(CryptographyDeprecationWarning, module)


@pytest.mark.parametrize("category", [DeprecationWarning, UserWarning, RuntimeWarning])
def test_other_categories_from_asyncssh_are_shown(category: type[Warning]) -> None:
    assert _shown(category, "asyncssh.connection")


def test_a_user_who_asks_for_warnings_gets_them(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sys, "warnoptions", ["default"])
    assert _shown(CryptographyDeprecationWarning, "asyncssh.crypto.dsa")
