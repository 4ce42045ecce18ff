"""The console scripts' entry point (``shimshift``, ``kubectl-shimshift``): silence one known library warning,
then run the command line.

A separate module because the filter has to be in place before anything imports asyncssh, and importing
:mod:`shimshift.cli.main` does (through the commands it registers).
"""

from __future__ import annotations

import sys
import warnings

from cryptography.utils import CryptographyDeprecationWarning


def run() -> None:
    quiet_asyncssh_dsa_deprecation()
    from shimshift.cli.main import main  # after the filter: this imports asyncssh

    main()


def quiet_asyncssh_dsa_deprecation() -> None:
    """Ignore cryptography's DSA deprecation when asyncssh raises it; every other warning still shows.

    cryptography 51 deprecates DSA: its DSA classes warn when an attribute of ``cryptography...dsa`` is read.
    asyncssh (2.24.1) still supports ssh-dss keys and reads those attributes at import, in its
    type aliases and signatures, so every command printed five CryptographyDeprecationWarning lines before
    its own output. No shimshift code path uses DSA. requirements.lock holds cryptography below 51, but a user
    installs the wheel into an environment that may well have 51 or later. A user who asks for warnings
    (``python -W ...`` or PYTHONWARNINGS) sees them as usual.
    """
    if sys.warnoptions:
        return
    warnings.filterwarnings("ignore", category=CryptographyDeprecationWarning, module=r"asyncssh(\.|$)")
