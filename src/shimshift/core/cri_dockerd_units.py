"""The systemd units `--install-cri-dockerd` writes, as data.

They carry the same settings as the units cri-dockerd packages ship (Mirantis/cri-dockerd
packaging/systemd/, docs/runtime-facts.md#cri-dockerd): socket activation on %t/cri-dockerd.sock (=
/run/cri-dockerd.sock,
which /var/run aliases), mode 0660 for root:docker, and a notify service started with
`--container-runtime-endpoint fd://`. Passing a unix:// address instead would make cri-dockerd
create the socket itself as root:root 0755 (Mirantis/cri-dockerd#291), so the moved dockershim flags go in a drop-in
that keeps `fd://`.
"""

from __future__ import annotations

BINARY_PATH = "/usr/bin/cri-dockerd"
SOCKET_UNIT_PATH = "/etc/systemd/system/cri-docker.socket"
SERVICE_UNIT_PATH = "/etc/systemd/system/cri-docker.service"

SOCKET_UNIT = """\
[Unit]
Description=CRI Docker Socket for the API (installed by shimshift)
PartOf=cri-docker.service

[Socket]
ListenStream=%t/cri-dockerd.sock
SocketMode=0660
SocketUser=root
SocketGroup=docker

[Install]
WantedBy=sockets.target
"""

SERVICE_UNIT = f"""\
[Unit]
Description=CRI interface for Docker Engine (installed by shimshift)
After=network-online.target firewalld.service docker.service
Wants=network-online.target
Requires=cri-docker.socket

[Service]
Type=notify
ExecStart={BINARY_PATH} --container-runtime-endpoint fd://
ExecReload=/bin/kill -s HUP $MAINPID
TimeoutSec=0
Restart=always
RestartSec=2
StartLimitBurst=3
StartLimitInterval=60s
LimitNOFILE=infinity
LimitNPROC=infinity
LimitCORE=infinity
TasksMax=infinity
Delegate=yes
KillMode=process

[Install]
WantedBy=multi-user.target
"""

UNIT_FILES: dict[str, str] = {SOCKET_UNIT_PATH: SOCKET_UNIT, SERVICE_UNIT_PATH: SERVICE_UNIT}
