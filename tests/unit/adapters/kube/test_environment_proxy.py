"""Which proxy the API server's requests go through: Go's http.ProxyFromEnvironment, which kubectl uses."""

from __future__ import annotations

import pytest

from shimshift.adapters.kube.transport import environment_proxy, without_password

SERVER = "https://api.prod.example.com:6443"
PROXY = "http://proxy.corp:3128"


@pytest.mark.parametrize(
    ("server", "environ", "proxy"),
    [
        (SERVER, {}, None),
        (SERVER, {"HTTPS_PROXY": PROXY}, PROXY),
        (SERVER, {"https_proxy": PROXY}, PROXY),
        (SERVER, {"HTTPS_PROXY": PROXY, "https_proxy": "http://other:1"}, PROXY),  # upper case first
        (SERVER, {"HTTPS_PROXY": "proxy.corp:3128"}, PROXY),  # no scheme: http
        (SERVER, {"HTTP_PROXY": PROXY}, None),  # HTTP_PROXY is for http servers only
        ("http://api.example.com:8080", {"HTTP_PROXY": PROXY}, PROXY),
        ("https://127.0.0.1:6443", {"HTTPS_PROXY": PROXY}, None),  # loopback is never proxied
        ("https://[::1]:6443", {"HTTPS_PROXY": PROXY}, None),
        ("https://localhost:6443", {"HTTPS_PROXY": PROXY}, None),
        (SERVER, {"HTTPS_PROXY": PROXY, "NO_PROXY": "*"}, None),
        (SERVER, {"HTTPS_PROXY": PROXY, "NO_PROXY": "example.com"}, None),  # the domain and below it
        ("https://example.com", {"HTTPS_PROXY": PROXY, "NO_PROXY": "example.com"}, None),
        ("https://notexample.com", {"HTTPS_PROXY": PROXY, "NO_PROXY": "example.com"}, PROXY),
        ("https://example.com", {"HTTPS_PROXY": PROXY, "NO_PROXY": ".example.com"}, PROXY),  # below it only
        (SERVER, {"HTTPS_PROXY": PROXY, "NO_PROXY": ".example.com"}, None),
        (SERVER, {"HTTPS_PROXY": PROXY, "NO_PROXY": "*.example.com"}, None),
        (SERVER, {"HTTPS_PROXY": PROXY, "no_proxy": "other.org, API.PROD.example.com"}, None),
        (SERVER, {"HTTPS_PROXY": PROXY, "NO_PROXY": "api.prod.example.com:6443"}, None),
        (SERVER, {"HTTPS_PROXY": PROXY, "NO_PROXY": "api.prod.example.com:443"}, PROXY),  # another port
        ("https://10.1.2.3:6443", {"HTTPS_PROXY": PROXY, "NO_PROXY": "10.0.0.0/8"}, None),
        ("https://11.1.2.3:6443", {"HTTPS_PROXY": PROXY, "NO_PROXY": "10.0.0.0/8"}, PROXY),
        ("https://10.1.2.3:6443", {"HTTPS_PROXY": PROXY, "NO_PROXY": "10.1.2.3"}, None),
        ("https://10.1.2.3", {"HTTPS_PROXY": PROXY, "NO_PROXY": "10.1.2.3:443"}, None),  # the scheme's port
        ("https://[fd00::1]:6443", {"HTTPS_PROXY": PROXY, "NO_PROXY": "fd00::/8"}, None),
        ("https://[fd00::1]:6443", {"HTTPS_PROXY": PROXY, "NO_PROXY": "[fd00::1]:6443"}, None),
        (SERVER, {"HTTPS_PROXY": PROXY, "NO_PROXY": "10.0.0.0/8,,"}, PROXY),  # a CIDR never matches a name
    ],
)
def test_the_proxy_kubectl_would_use(server: str, environ: dict[str, str], proxy: str | None) -> None:
    assert environment_proxy(server, environ) == proxy


def test_a_proxy_password_is_not_shown() -> None:
    assert without_password("http://ops:s3cret@proxy.corp:3128") == "http://ops:***@proxy.corp:3128"
    assert without_password(PROXY) == PROXY
