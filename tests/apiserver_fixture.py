"""A real kube-apiserver (+ etcd, + a few controllers) on loopback, for API-semantics tests and benchmarks.

Not a fake: the Debian ``etcd`` binary and the v1.23.17 ``kube-apiserver`` / ``kube-controller-manager``
built for the lab run as child processes on free 127.0.0.1 ports, with a temp data dir (on /dev/shm when
there is one, so the benchmark is not disk-bound). Authentication is a static token for a member of
``system:masters``; the serving certificate is signed by a throwaway CA we generate, so clients verify TLS.

There are no kubelets: pods bound to a node never finish a graceful deletion, so tests delete or evict
with grace period 0, and play the kubelet's part where needed by writing pod/node *status*.

Use :class:`LocalApiServer` as a context manager; ``tests/e2e/cluster/conftest.py`` wraps it in a session
fixture and ``benchmarks/audit_bench.py`` imports it directly.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import ipaddress
import json
import os
import secrets
import shutil
import socket
import ssl
import subprocess
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import TYPE_CHECKING

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import NameOID

if TYPE_CHECKING:
    from types import TracebackType

# Where the v1.23.17 binaries are looked for, in order (SHIMSHIFT_K8S_BIN: dirs, ":"-separated).
K8S_BIN_DIRS = tuple(
    Path(item)
    for item in os.environ.get("SHIMSHIFT_K8S_BIN", "/var/cache/shimshift/bin/v1.23.17").split(":")
    if item
)
ETCD = shutil.which("etcd") or "/usr/bin/etcd"
# Only the disruption controller: it computes PDB status (without it every eviction under a PDB is a 429,
# and with it 429s come and go exactly as in a real cluster). Node lifecycle, pod GC and the garbage
# collector are left out on purpose: with no kubelets they would taint the nodes and delete their pods.
CONTROLLERS = "disruption"
OPERATOR = "shimshift-operator"
COUNTED_USER = "shimshift-counted"


def k8s_binary(name: str) -> Path:
    for directory in K8S_BIN_DIRS:
        if (directory / name).is_file():
            return directory / name
    raise RuntimeError(
        f"{name} not found in {', '.join(map(str, K8S_BIN_DIRS))}: build the lab binaries first "
        "(shimshift/lab/assets/build/build-kubernetes.sh) or point SHIMSHIFT_K8S_BIN at a directory that has it"
    )


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _write_private(path: Path, data: bytes) -> None:
    path.write_bytes(data)
    path.chmod(0o600)


def _make_pki(directory: Path) -> dict[str, Path]:
    """A CA, a serving cert for 127.0.0.1/localhost, and the service-account signing key pair."""
    now = dt.datetime.now(dt.UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "shimshift-test-ca")])
    ca_cert = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=2))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                key_cert_sign=True,
                crl_sign=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .sign(ca_key, hashes.SHA256())
    )
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "kube-apiserver")]))
        .issuer_name(ca_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=2))
        .add_extension(
            x509.SubjectAlternativeName(
                [
                    x509.DNSName("localhost"),
                    x509.DNSName("kubernetes"),
                    x509.IPAddress(ipaddress.ip_address("127.0.0.1")),
                ]
            ),
            critical=False,
        )
        .sign(ca_key, hashes.SHA256())
    )
    sa_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    paths = {
        name: directory / name
        for name in ("ca.crt", "ca.key", "apiserver.crt", "apiserver.key", "sa.key", "sa.pub")
    }
    paths["ca.crt"].write_bytes(ca_cert.public_bytes(serialization.Encoding.PEM))
    _write_private(
        paths["ca.key"],
        ca_key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        ),
    )
    paths["apiserver.crt"].write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    _write_private(
        paths["apiserver.key"],
        key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        ),
    )
    _write_private(
        paths["sa.key"],
        sa_key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.TraditionalOpenSSL,
            serialization.NoEncryption(),
        ),
    )
    paths["sa.pub"].write_bytes(
        sa_key.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
    )
    return paths


class LocalApiServer:
    """etcd + kube-apiserver (+ kube-controller-manager) on loopback; ``kubeconfig`` is ready to use."""

    def __init__(
        self,
        *,
        controllers: bool = True,
        controller_names: str = CONTROLLERS,
        extra_apiserver_args: tuple[str, ...] = (),
        audit_log: bool = False,
        audit_only_user: str | None = None,
        base_dir: Path | None = None,
        startup_timeout: float = 90.0,
    ) -> None:
        self.controllers = controllers
        self.controller_names = controller_names  # the scale rig also runs the workload controllers
        self.extra_apiserver_args = extra_apiserver_args
        self.startup_timeout = startup_timeout
        parent = base_dir or (Path("/dev/shm") if Path("/dev/shm").is_dir() else None)
        self.directory = Path(tempfile.mkdtemp(prefix="shimshift-apiserver-", dir=parent))
        self.token = secrets.token_hex(16)
        self.limited_token = secrets.token_hex(16)
        # OPERATOR has no rights of its own either: tests bind it to a Role that lacks exactly one verb.
        self.operator_token = secrets.token_hex(16)
        self.port = free_port()
        self.url = f"https://127.0.0.1:{self.port}"
        self.kubeconfig = self.directory / "kubeconfig"
        # With audit_log, every request's URI is recorded here (one JSON event per line, level Metadata),
        # so tests can check what the client really sent (e.g. kubectl's limit=500 page size).
        self.audit_log_path = self.directory / "audit.log" if audit_log else None
        # With audit_only_user, only that user's requests are logged: the scale benchmarks give shimshift
        # its own token (``counted_token``, user COUNTED_USER) and count its requests, not kwok's.
        self.audit_only_user = audit_only_user
        self.counted_token = secrets.token_hex(16)
        self.processes: list[subprocess.Popen[bytes]] = []

    # -- lifecycle -----------------------------------------------------------------------------------
    def __enter__(self) -> LocalApiServer:
        try:
            self.start()
        except BaseException:
            self.stop()
            raise
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    def _spawn(self, name: str, argv: list[str]) -> subprocess.Popen[bytes]:
        log = (self.directory / f"{name}.log").open("wb")
        process = subprocess.Popen(
            argv, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True
        )
        log.close()
        self.processes.append(process)
        return process

    def log_tail(self, name: str, lines: int = 30) -> str:
        path = self.directory / f"{name}.log"
        if not path.exists():
            return f"({name} wrote no log)"
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])

    def start(self) -> None:
        if not Path(ETCD).is_file():
            raise RuntimeError(f"{ETCD} is missing: apt-get install etcd-server")
        apiserver = k8s_binary("kube-apiserver")
        controller_manager = k8s_binary("kube-controller-manager") if self.controllers else None
        pki = _make_pki(self.directory)
        tokens = self.directory / "tokens.csv"
        # A second user with no RBAC binding at all: every call it makes is a real 403.
        tokens.write_text(
            f"{self.token},shimshift-test,1000,system:masters\n{self.limited_token},nobody,1001\n"
            f"{self.operator_token},{OPERATOR},1002\n"
            f"{self.counted_token},{COUNTED_USER},1003,system:masters\n"
        )
        tokens.chmod(0o600)
        etcd_client, etcd_peer = free_port(), free_port()
        # fmt: off
        self._spawn("etcd", [
            ETCD, "--name", "default", "--data-dir", str(self.directory / "etcd"),
            "--listen-client-urls", f"http://127.0.0.1:{etcd_client}",
            "--advertise-client-urls", f"http://127.0.0.1:{etcd_client}",
            "--listen-peer-urls", f"http://127.0.0.1:{etcd_peer}",
            "--initial-advertise-peer-urls", f"http://127.0.0.1:{etcd_peer}",
            "--initial-cluster", f"default=http://127.0.0.1:{etcd_peer}",
            "--quota-backend-bytes", str(8 * 1024**3), "--snapshot-count", "1000000", "--log-level", "warn",
        ])
        self._spawn("kube-apiserver", [
            str(apiserver), "--etcd-servers", f"http://127.0.0.1:{etcd_client}",
            "--bind-address", "127.0.0.1", "--advertise-address", "127.0.0.1",
            "--secure-port", str(self.port),
            "--tls-cert-file", str(pki["apiserver.crt"]), "--tls-private-key-file", str(pki["apiserver.key"]),
            "--client-ca-file", str(pki["ca.crt"]), "--token-auth-file", str(tokens),
            "--authorization-mode", "RBAC",
            "--service-account-issuer", "https://kubernetes.default.svc.cluster.local",
            "--service-account-key-file", str(pki["sa.pub"]),
            "--service-account-signing-key-file", str(pki["sa.key"]),
            "--service-cluster-ip-range", "10.96.0.0/12", "--allow-privileged=true",
            # No serviceaccount controller runs, so pods must not need a "default" ServiceAccount.
            "--disable-admission-plugins", "ServiceAccount",
            # The benchmark sends hundreds of concurrent creates; the defaults (400/200) would 429 them.
            "--max-requests-inflight", "3000", "--max-mutating-requests-inflight", "2000",
            "--enable-priority-and-fairness=false", "--v", "1",
            *self._audit_args(),
            *self.extra_apiserver_args,
        ])
        self._write_kubeconfig(pki["ca.crt"])
        self._wait_ready()
        if controller_manager is not None:
            self._spawn("kube-controller-manager", [
                str(controller_manager), "--kubeconfig", str(self.kubeconfig), "--controllers", self.controller_names,
                "--leader-elect=false", "--secure-port", "0", "--bind-address", "127.0.0.1",
                "--kube-api-qps", "200", "--kube-api-burst", "400", "--v", "1",
            ])
        # fmt: on

    def _audit_args(self) -> list[str]:
        if self.audit_log_path is None:
            return []
        policy = self.directory / "audit-policy.yaml"
        rules = "- level: Metadata\n"
        if self.audit_only_user is not None:
            rules = f"- level: Metadata\n  users: [{self.audit_only_user}]\n- level: None\n"
        policy.write_text("apiVersion: audit.k8s.io/v1\nkind: Policy\nrules:\n" + rules)
        return ["--audit-policy-file", str(policy), "--audit-log-path", str(self.audit_log_path),
                "--audit-log-format", "json", "--audit-log-mode", "blocking"]

    def audited_requests(self) -> list[dict[str, object]]:
        """The audit events written so far (ResponseComplete stage only), oldest first.

        The API server rotates its audit log at 100 MB (lumberjack's default size) into files named
        audit-<time>.log beside it; a 1,000-node fleet run writes more than that, and reading the current
        file alone gave counts of its last minutes only."""
        if self.audit_log_path is None:
            return []
        log = self.audit_log_path
        files = [*sorted(log.parent.glob(f"{log.stem}-*{log.suffix}")), log]
        events = [json.loads(line) for path in files if path.exists()
                  for line in path.read_text().splitlines() if line.strip()]
        return [event for event in events if event.get("stage") == "ResponseComplete"]

    def kubeconfig_for(self, path: Path, token: str) -> Path:
        """A kubeconfig for this server authenticating with ``token``."""
        path.write_text(
            "apiVersion: v1\nkind: Config\n"
            "clusters:\n- name: local\n  cluster:\n"
            f"    server: {self.url}\n    certificate-authority: {self.directory / 'ca.crt'}\n"
            "users:\n- name: user\n  user:\n"
            f"    token: {token}\n"
            "contexts:\n- name: local\n  context:\n    cluster: local\n    user: user\n"
            "current-context: local\n"
        )
        path.chmod(0o600)
        return path

    def _write_kubeconfig(self, ca: Path) -> None:
        self.kubeconfig.write_text(
            "apiVersion: v1\nkind: Config\n"
            "clusters:\n- name: local\n  cluster:\n"
            f"    server: {self.url}\n    certificate-authority: {ca}\n"
            "users:\n- name: admin\n  user:\n"
            f"    token: {self.token}\n"
            "contexts:\n- name: local\n  context:\n    cluster: local\n    user: admin\n"
            "current-context: local\n"
        )
        self.kubeconfig.chmod(0o600)

    def _wait_ready(self) -> None:
        context = ssl.create_default_context(cafile=str(self.directory / "ca.crt"))
        deadline = time.monotonic() + self.startup_timeout
        last = ""
        while time.monotonic() < deadline:
            for process in self.processes:
                if process.poll() is not None:
                    name = "etcd" if process.args[0] == ETCD else "kube-apiserver"  # type: ignore[index]
                    raise RuntimeError(f"{name} exited with {process.returncode}:\n{self.log_tail(name)}")
            request = urllib.request.Request(
                f"{self.url}/readyz", headers={"Authorization": f"Bearer {self.token}"}
            )
            try:
                with urllib.request.urlopen(request, context=context, timeout=5) as response:
                    if response.status == 200:
                        return
            except (urllib.error.URLError, OSError) as error:
                last = str(error)
            time.sleep(0.3)
        raise RuntimeError(
            f"kube-apiserver not ready after {self.startup_timeout}s ({last}):\n"
            f"{self.log_tail('kube-apiserver')}"
        )

    def restart_apiserver(self, *, down_for: float = 2.0) -> None:
        """Kill kube-apiserver (its connections close, as when its static pod's container is replaced), wait
        ``down_for`` seconds, start it again with the same arguments and wait until it is ready."""
        [old] = [p for p in self.processes if Path(str(p.args[0])).name == "kube-apiserver"]  # type: ignore[index]
        old.kill()  # SIGTERM waits for every open watch to end: long, and not what is under test
        old.wait(timeout=30)
        self.processes.remove(old)
        time.sleep(down_for)
        self._spawn("kube-apiserver", [str(arg) for arg in old.args])  # type: ignore[union-attr]
        self._wait_ready()

    def stop(self) -> None:
        for process in reversed(self.processes):
            if process.poll() is None:
                process.terminate()
        for process in reversed(self.processes):
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=5)
        self.processes.clear()
        with contextlib.suppress(OSError):
            shutil.rmtree(self.directory)
