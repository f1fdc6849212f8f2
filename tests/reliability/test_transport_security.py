"""Base URLs: plain ``http://`` is refused for non-loopback hosts unless explicitly allowed; TLS is verified.

The first half checks every way a base URL gets in (constructor, environment, ``merged``, ``update``,
``%deepseek config``, ``%%deepseek`` cells, the settings form, ``Session``/``ask`` options, attribute
assignment) and that a refused URL sends nothing. The second half serves HTTPS on 127.0.0.1 with a
self-signed certificate made in the test and checks that every client path refuses it, that no request
(so no key) reached the server, and that the same server works once its certificate is trusted; plus a
source scan for anything that turns verification off.
"""

from __future__ import annotations

import ast
import asyncio
import importlib.util
import json
import shutil
import ssl
import subprocess
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest
from IPython.core.error import UsageError
from IPython.utils.capture import capture_output
from shell import TestingShell

from deepseek_magic.client import AsyncChatClient, ChatClient
from deepseek_magic.config.settings import Settings
from deepseek_magic.conversation.session import Session
from deepseek_magic.core.errors import APIConnectionError, ConfigError, DeepSeekError
from deepseek_magic.providers import get_provider, provider_names

PACKAGE = Path(__file__).resolve().parents[2] / "deepseek_magic"
KEY = "sk-transport-0123456789abcdef"

INSECURE = [
    "http://api.deepseek.com",
    "HTTP://api.deepseek.com/v1",
    "http://example.com:8000/v1",
    "http://10.0.0.5:8000",
    "http://192.168.1.20",
    "http://[2001:db8::1]:8000",
    "http://localhost.example.com",
    "http://127.0.0.1.nip.io:8000",
    "http://user-less.localhost.attacker.net",
]
LOOPBACK = [
    "http://127.0.0.1:8000",
    "http://127.5.6.7:9",
    "http://localhost:8000/v1",
    "http://LOCALHOST",
    "http://[::1]:8000",
]


@dataclass
class Recorder:
    """A transport that records what would have been sent and answers 500."""

    requests: list[httpx.Request] = field(default_factory=list)

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        return httpx.Response(500, json={"error": {"message": "recorded"}})

    def client(self) -> ChatClient:
        return ChatClient(transport=httpx.MockTransport(self))


# ------------------------------------------------------------------------------ http refused


@pytest.mark.parametrize("url", INSECURE)
def test_plain_http_to_another_host_is_refused_everywhere(url: str) -> None:
    with pytest.raises(ConfigError, match="plain http to a non-loopback host"):
        Settings.build(base_url=url)
    with pytest.raises(ConfigError, match="plain http"):
        Settings.from_env({"DEEPSEEK_BASE_URL": url})
    with pytest.raises(ValueError, match="plain http"):
        Settings(base_url=url)
    base = Settings(api_key=KEY)
    with pytest.raises(ConfigError, match="plain http"):
        base.merged(base_url=url)
    with pytest.raises(ConfigError, match="plain http"):
        base.update(base_url=url)
    assert base.base_url is None, "a refused update changes nothing"


@pytest.mark.parametrize("url", INSECURE[:3])
def test_a_refused_url_sends_nothing(url: str) -> None:
    recorder = Recorder()
    session = Session(settings=Settings(api_key=KEY, max_retries=0), client=recorder.client())
    with pytest.raises(ConfigError):
        session.ask("hello", base_url=url)
    with pytest.raises(ConfigError):
        Session(settings=Settings(api_key=KEY), client=recorder.client(), base_url=url)
    assert recorder.requests == []


@pytest.mark.parametrize("url", LOOPBACK)
def test_plain_http_to_loopback_is_allowed(url: str) -> None:
    assert Settings.build(base_url=url).base_url == url.rstrip("/")
    recorder = Recorder()
    session = Session(settings=Settings(api_key=KEY, base_url=url, max_retries=0), client=recorder.client())
    with pytest.raises(DeepSeekError):
        session.ask("hello")
    assert [r.url.scheme for r in recorder.requests] == ["http"]


@pytest.mark.parametrize("url", INSECURE[:4])
def test_allow_insecure_http_is_the_explicit_way_out(url: str) -> None:
    settings = Settings.build(base_url=url, allow_insecure_http=True)
    assert settings.base_url == url.rstrip("/")
    with pytest.raises(ConfigError):
        settings.update(allow_insecure_http=False)
    assert settings.allow_insecure_http is True, "refused: nothing changed"
    assert Settings.build(base_url=url.replace("http://", "https://", 1).replace("HTTP://", "https://", 1))


def test_an_https_url_stays_https_and_credentials_in_it_are_refused() -> None:
    assert Settings.build(base_url="https://api.example.com/v1/").base_url == "https://api.example.com/v1"
    with pytest.raises(ConfigError, match="credentials"):
        Settings.build(base_url="https://user:pw@api.example.com")
    for scheme in ("ftp://api.example.com", "file:///etc/passwd", "ws://localhost:1"):
        with pytest.raises(ConfigError):
            Settings.build(base_url=scheme)


@pytest.mark.parametrize("how", ["base_url", "allow_insecure_http"])
def test_a_refused_attribute_assignment_changes_nothing_and_sends_nothing(how: str) -> None:
    recorder = Recorder()
    if how == "base_url":
        settings = Settings(api_key=KEY, base_url="https://api.example.com", max_retries=0)
        with pytest.raises(ValueError, match="plain http"):
            settings.base_url = "http://api.example.com"
    else:
        # Turning the permission off while an http URL is set is refused as a whole: the settings stay as they
        # were (consistent), so the user must change the URL first; nothing is half-applied.
        settings = Settings(api_key=KEY, base_url="http://api.example.com", allow_insecure_http=True, max_retries=0)
        with pytest.raises(ValueError, match="plain http"):
            settings.allow_insecure_http = False
        assert settings.allow_insecure_http is True and settings.base_url == "http://api.example.com"
        return
    assert settings.base_url == "https://api.example.com", "the refused value did not land"
    with pytest.raises(DeepSeekError):
        Session(settings=settings, client=recorder.client()).ask("hello")
    sent = [str(r.url) for r in recorder.requests if r.url.scheme == "http"]
    assert sent == [], f"a request went out over plain http after the refusal: {sent}"


@pytest.fixture
def ip(testing_shell: TestingShell) -> Iterator[TestingShell]:
    if "deepseek_magic" in testing_shell.extension_manager.loaded:
        testing_shell.run_line_magic("unload_ext", "deepseek_magic")
    testing_shell.run_line_magic("load_ext", "deepseek_magic")
    yield testing_shell
    testing_shell.run_line_magic("unload_ext", "deepseek_magic")


def test_the_magics_refuse_plain_http_and_send_nothing(ip: TestingShell, monkeypatch: pytest.MonkeyPatch) -> None:
    magics = ip.magics_manager.registry["DeepSeekMagics"]
    recorder = Recorder()
    magics._client = recorder.client()
    monkeypatch.setenv("DEEPSEEK_API_KEY", KEY)
    monkeypatch.setenv("DEEPSEEK_BASE_URL", "http://api.example.com")
    with capture_output(), pytest.raises((ConfigError, UsageError), match="plain http"):
        ip.run_cell("%%deepseek\nhello")
    monkeypatch.setenv("DEEPSEEK_BASE_URL", "https://api.example.com")
    magics._settings = None
    with capture_output(), pytest.raises((ConfigError, UsageError), match="plain http"):
        ip.run_cell("%deepseek config base_url=http://api.example.com")
    assert magics.settings.base_url == "https://api.example.com"
    with capture_output(), pytest.raises((ConfigError, UsageError), match="plain http"):
        ip.run_cell("%deepseek config allow_insecure_http=False base_url=http://10.1.2.3")
    assert recorder.requests == []
    with capture_output():
        ip.run_cell("%deepseek config allow_insecure_http=True base_url=http://10.1.2.3")
    assert magics.settings.base_url == "http://10.1.2.3"


def test_the_settings_form_refuses_plain_http() -> None:
    from deepseek_magic.ui.settings_form import SettingsForm

    settings = Settings(api_key=KEY, base_url="https://api.example.com")
    recorder = Recorder()
    form = SettingsForm(settings, recorder.client())
    form.base_url.value = "http://api.example.com"
    assert "plain http" in form.status.value and form.status.value.startswith("✗")
    assert settings.base_url == "https://api.example.com" and form.base_url.value == "https://api.example.com"
    form.base_url.value = "http://127.0.0.1:8000"
    assert settings.base_url == "http://127.0.0.1:8000"
    assert recorder.requests == []


@pytest.mark.parametrize("name", provider_names())
def test_every_provider_default_url_is_https(name: str) -> None:
    provider = get_provider(name)
    settings = Settings(provider=name)
    calls = [provider.models_call(settings), provider.balance_call(settings)]
    request = Session(settings=settings).exchange("hello").next_request()
    assert request is not None
    calls.append(provider.prepare(request))
    urls = [url for call in calls if call is not None for url in call.urls]
    assert urls and all(url.startswith("https://") for url in urls), urls


def test_a_redirect_to_plain_http_is_not_followed() -> None:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(307, headers={"Location": "http://api.example.com/chat/completions"})

    settings = Settings(api_key=KEY, base_url="https://api.example.com", max_retries=0)
    session = Session(settings=settings, client=ChatClient(transport=httpx.MockTransport(handler)))
    with pytest.raises(DeepSeekError):
        session.ask("hello")
    assert [str(r.url) for r in seen] == ["https://api.example.com/chat/completions"]


# ------------------------------------------------------------------------------ TLS verified


def make_certificate(folder: Path) -> tuple[Path, Path] | None:
    """A self-signed certificate for 127.0.0.1/localhost: trustme, else cryptography, else openssl."""
    cert, key = folder / "cert.pem", folder / "key.pem"
    if importlib.util.find_spec("trustme") is not None:
        import trustme

        ca = trustme.CA()
        issued = ca.issue_cert("127.0.0.1", "localhost")
        issued.private_key_pem.write_to_path(str(key))
        issued.cert_chain_pems[0].write_to_path(str(cert))
        ca.cert_pem.write_to_path(str(folder / "ca.pem"))
        return cert, key
    if importlib.util.find_spec("cryptography") is not None:
        import datetime
        import ipaddress

        from cryptography import x509
        from cryptography.hazmat.primitives import hashes, serialization
        from cryptography.hazmat.primitives.asymmetric import ec
        from cryptography.x509.oid import NameOID

        private = ec.generate_private_key(ec.SECP256R1())
        name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
        now = datetime.datetime.now(datetime.timezone.utc)
        alt = x509.SubjectAlternativeName(
            [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
        )
        certificate = (
            x509.CertificateBuilder()
            .subject_name(name)
            .issuer_name(name)
            .public_key(private.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + datetime.timedelta(days=1))
            .add_extension(alt, critical=False)
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .sign(private, hashes.SHA256())
        )
        cert.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
        key.write_bytes(
            private.private_bytes(
                serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
            )
        )
        return cert, key
    openssl = shutil.which("openssl")
    if openssl is None:
        return None
    subprocess.run(
        [
            *(openssl, "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"),
            *("-keyout", str(key), "-out", str(cert), "-days", "1", "-subj", "/CN=localhost"),
            *("-addext", "subjectAltName=IP:127.0.0.1,DNS:localhost"),
        ],
        check=True,
        capture_output=True,
        timeout=30,
    )
    return cert, key


@dataclass
class TLSServer:
    base_url: str
    trusted: Path
    paths: list[str]


@pytest.fixture(scope="module")
def tls_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TLSServer]:
    folder = tmp_path_factory.mktemp("tls")
    made = make_certificate(folder)
    if made is None:
        pytest.skip("no way to make a certificate here (trustme, cryptography and openssl are all missing)")
    cert, key = made
    paths: list[str] = []

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            paths.append(self.path)
            body = json.dumps({"object": "list", "data": [{"id": "deepseek-v4-flash", "object": "model"}]}).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def do_POST(self) -> None:
            paths.append(self.path)
            self.send_response(500)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, format: str, *args: Any) -> None:
            pass

    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(str(cert), str(key))
    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.socket = context.wrap_socket(server.socket, server_side=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    trusted = folder / "ca.pem" if (folder / "ca.pem").exists() else cert
    try:
        yield TLSServer(f"https://127.0.0.1:{server.server_address[1]}", trusted, paths)
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


def assert_certificate_refused(exc: BaseException) -> None:
    assert isinstance(exc, APIConnectionError), repr(exc)
    assert "certificate verify failed" in str(exc).lower() or "certificate_verify_failed" in str(exc).lower(), str(exc)
    assert KEY not in str(exc)


def settings_for(server: TLSServer) -> Settings:
    return Settings(api_key=KEY, base_url=server.base_url, max_retries=0, connect_timeout=5)


def test_the_sync_client_refuses_a_self_signed_certificate(tls_server: TLSServer) -> None:
    before = len(tls_server.paths)
    session = Session(settings=settings_for(tls_server))
    with pytest.raises(DeepSeekError) as raised:
        session.ask("hello")
    assert_certificate_refused(raised.value)
    with pytest.raises(DeepSeekError) as raised:
        session.client.models(session.settings)
    assert_certificate_refused(raised.value)
    assert len(tls_server.paths) == before, "no HTTP request (and so no key) reached the server"


def test_the_async_client_refuses_a_self_signed_certificate(tls_server: TLSServer) -> None:
    before = len(tls_server.paths)
    session = Session(settings=settings_for(tls_server))
    with pytest.raises(DeepSeekError) as raised:
        asyncio.run(session.aask("hello"))
    assert_certificate_refused(raised.value)

    async def models() -> Any:
        async with AsyncChatClient() as client:
            provider = get_provider("deepseek")
            call = provider.models_call(session.settings)
            assert call is not None
            return await client.get_json(call, session.settings)

    with pytest.raises(DeepSeekError) as raised:
        asyncio.run(models())
    assert_certificate_refused(raised.value)
    assert len(tls_server.paths) == before


def test_a_batch_refuses_a_self_signed_certificate(tls_server: TLSServer) -> None:
    before = len(tls_server.paths)
    session = Session(settings=settings_for(tls_server))
    frame = session.batch(["one"], "Say {value}", concurrency=1)
    error = str(frame["error"].iloc[0])
    assert "certificate verify failed" in error.lower() and frame["reply"].isna().all(), error
    assert len(tls_server.paths) == before


def test_the_same_server_works_once_its_certificate_is_trusted(tls_server: TLSServer) -> None:
    """The control: the refusals above are about the certificate, not a broken server."""
    context = ssl.create_default_context(cafile=str(tls_server.trusted))
    client = ChatClient(transport=httpx.HTTPTransport(verify=context))
    assert client.models(settings_for(tls_server)) == ["deepseek-v4-flash"]
    assert tls_server.paths[-1] == "/models"


VERIFY_OFF = ("CERT_NONE", "_create_unverified_context", "check_hostname", "verify_mode", "PYTHONHTTPSVERIFY")


def test_nothing_in_the_package_turns_verification_off() -> None:
    problems: list[str] = []
    sources = sorted(PACKAGE.rglob("*.py"))
    assert len(sources) > 30
    for path in sources:
        text = path.read_text(encoding="utf-8")
        where = path.relative_to(PACKAGE.parent)
        problems += [f"{where}: mentions {word}" for word in VERIFY_OFF if word in text]
        for node in ast.walk(ast.parse(text)):
            if isinstance(node, ast.keyword) and node.arg == "verify":
                value = node.value
                if isinstance(value, ast.Constant) or (isinstance(value, ast.Name) and value.id in ("False", "None")):
                    problems.append(f"{where}:{value.lineno}: verify={ast.unparse(value)}")
            if (
                isinstance(node, ast.Call)
                and ast.unparse(node.func).endswith("create_ssl_context")
                and (node.args or any(k.arg == "verify" for k in node.keywords))
            ):
                problems.append(f"{where}:{node.lineno}: {ast.unparse(node)}")
    assert problems == []
