"""Instance identity from IMDSv2, against a local server that insists on the session token."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from ocap_agent import __version__, identity
from ocap_agent.config import ConfigError, InstanceConfig

TOKEN = "imds-token-123"


class Imds(BaseHTTPRequestHandler):
    def do_PUT(self) -> None:
        if self.path == "/latest/api/token" and self.headers.get("X-aws-ec2-metadata-token-ttl-seconds"):
            self._send(200, TOKEN)
        else:
            self._send(400, "")

    def do_GET(self) -> None:
        if self.headers.get("X-aws-ec2-metadata-token") != TOKEN:
            self._send(401, "")  # IMDSv2 only, as the launch template requires
        elif self.path == "/latest/meta-data/instance-id":
            self._send(200, "i-0123456789abcdef0")
        else:
            self._send(404, "")

    def _send(self, code: int, body: str) -> None:
        self.send_response(code)
        self.end_headers()
        self.wfile.write(body.encode())

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture()
def imds(monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), Imds)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{server.server_address[1]}"
    monkeypatch.delenv(identity.ENV_IMDS_DISABLED, raising=False)
    monkeypatch.setenv(identity.ENV_IMDS_ENDPOINT, url)
    yield url
    server.shutdown()


def test_empty_instance_id_comes_from_imdsv2(imds: str) -> None:
    ident = identity.resolve(InstanceConfig(user="kiosk"))
    assert ident.instance_id == "i-0123456789abcdef0"
    assert ident.user == "kiosk"
    assert ident.image_version == __version__


def test_config_values_win_over_the_metadata_service(imds: str) -> None:
    ident = identity.resolve(InstanceConfig(instance_id="i-0fromconfig", image_version="9.9.9"))
    assert ident.instance_id == "i-0fromconfig" and ident.image_version == "9.9.9"


def test_unreachable_metadata_service_names_the_key_to_set(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(identity.ENV_IMDS_DISABLED, raising=False)
    monkeypatch.setenv(identity.ENV_IMDS_ENDPOINT, "http://127.0.0.1:9")
    with pytest.raises(ConfigError, match=r"instance\.instance_id: empty and the instance metadata service"):
        identity.imds_instance_id(timeout_s=1)
