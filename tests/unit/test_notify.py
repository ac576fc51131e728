"""Webhook notifications against real HTTP servers on 127.0.0.1."""
from __future__ import annotations

import json
import logging
import socket
import threading
import time
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from datalad_slurmsweep.errors import UsageError
from datalad_slurmsweep.sweep import notify
from datalad_slurmsweep.sweep.notify import (
    ENV_VAR,
    GIT_KEY,
    build_payload,
    describe_completion,
    describe_submission,
    resolve_webhook,
    send,
)

SECRET_PATH = "/webhookb2/s3cr3t-t0ken-XYZ"


@pytest.fixture(autouse=True)
def no_proxy(monkeypatch):
    # A proxy from the environment would intercept requests to 127.0.0.1.
    for name in ("http_proxy", "https_proxy", "all_proxy", "HTTP_PROXY",
                 "HTTPS_PROXY", "ALL_PROXY"):
        monkeypatch.delenv(name, raising=False)


@pytest.fixture
def notify_log(caplog) -> Iterator[pytest.LogCaptureFixture]:
    # DataLad's logger may not propagate to the root logger caplog listens on.
    logger = logging.getLogger("datalad.slurmsweep.notify")
    logger.addHandler(caplog.handler)
    caplog.set_level(logging.DEBUG, logger=logger.name)
    yield caplog
    logger.removeHandler(caplog.handler)


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False


@pytest.fixture
def serve() -> Iterator[Callable[[str], tuple[str, list[dict]]]]:
    """Start a local server with a behaviour; return its URL and the requests it saw."""
    release = threading.Event()
    servers: list[tuple[_Server, threading.Thread]] = []

    def start(behaviour: str) -> tuple[str, list[dict]]:
        seen: list[dict] = []

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):  # keep test output quiet
                pass

            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                seen.append({"path": self.path, "headers": dict(self.headers),
                             "body": body})
                if behaviour == "hang":
                    release.wait(30)
                    return
                if behaviour == "trickle":
                    # Each byte arrives well within the socket timeout, so
                    # only an overall deadline stops the client.
                    self.send_response(200)
                    self.send_header("Content-Length", "1000")
                    self.end_headers()
                    for _ in range(1000):
                        if release.wait(0.2):
                            return
                        self.wfile.write(b"x")
                        self.wfile.flush()
                    return
                if behaviour == "redirect":
                    self.send_response(302)
                    self.send_header("Location", "/elsewhere")
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                status = 500 if behaviour == "error" else 200
                self.send_response(status)
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"ok")

        server = _Server(("127.0.0.1", 0), Handler)
        thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
        thread.start()
        servers.append((server, thread))
        return f"http://127.0.0.1:{server.server_address[1]}{SECRET_PATH}", seen

    yield start
    release.set()
    for server, thread in servers:
        server.shutdown()
        server.server_close()
        thread.join(5)


def assert_no_url(url: str, *texts: str) -> None:
    for text in texts:
        assert url not in text and SECRET_PATH not in text and "s3cr3t" not in text
        assert url.split("/")[2] not in text  # not even host:port


def test_send_posts_json(serve, notify_log):
    url, seen = serve("ok")
    ok, reason = send(url, "Sweep done", "3 COMPLETED", facts={"commit": "abc"})
    assert (ok, reason) == (True, "sent")
    assert len(seen) == 1 and seen[0]["path"] == SECRET_PATH
    assert seen[0]["headers"]["Content-Type"] == "application/json"
    payload = json.loads(seen[0]["body"])
    assert payload["title"] == payload["summary"] == "Sweep done"
    for key in ("text", "content"):
        assert "Sweep done" in payload[key] and "3 COMPLETED" in payload[key]
        assert "commit: abc" in payload[key]
    assert payload["facts"] == {"commit": "abc"}
    assert_no_url(url, notify_log.text)


def test_http_error_is_reported_without_url(serve, notify_log):
    url, seen = serve("error")
    ok, reason = send(url, "t", "x", timeout=2.0)
    assert not ok and "500" in reason and "webhook" in reason
    assert len(seen) == 1
    assert_no_url(url, reason, notify_log.text)
    assert "500" in notify_log.text


def test_redirect_is_not_followed(serve):
    url, seen = serve("redirect")
    ok, reason = send(url, "t", "x", timeout=2.0)
    assert not ok and "302" in reason and len(seen) == 1


@pytest.mark.parametrize("behaviour", ["hang", "trickle"])
def test_unresponsive_server_is_bounded_by_timeout(serve, behaviour, notify_log):
    url, seen = serve(behaviour)
    start = time.monotonic()
    ok, reason = send(url, "t", "x", timeout=1.0)
    elapsed = time.monotonic() - start
    assert not ok and "timed out" in reason
    assert elapsed < 2.0
    assert len(seen) == 1
    assert_no_url(url, reason, notify_log.text)


def test_refused_connection(notify_log):
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    url = f"http://127.0.0.1:{port}{SECRET_PATH}"
    ok, reason = send(url, "t", "x", timeout=2.0)
    assert not ok and "webhook" in reason
    assert_no_url(url, reason, notify_log.text)


@pytest.mark.parametrize("bad", ["ftp://example.org/x", "not a url", "http://", ""])
def test_send_never_raises_on_invalid_url(bad):
    ok, reason = send(bad, "t", "x", timeout=1.0)
    assert not ok and reason
    if bad:
        assert bad not in reason


def test_send_never_raises_on_unserialisable_facts(serve):
    url, seen = serve("ok")
    ok, reason = send(url, "t", "x", facts={"when": object()})  # type: ignore[dict-item]
    assert not ok and not seen
    assert_no_url(url, reason)


URL_ENV = "https://env.example.org/hook"
URL_GIT = "https://git.example.org/hook"
URL_CFG = "https://cfg.example.org/hook"


def test_resolve_precedence():
    env, git = {ENV_VAR: URL_ENV}, {GIT_KEY: URL_GIT}
    assert resolve_webhook(URL_CFG, git, env) == URL_ENV
    assert resolve_webhook(URL_CFG, git, {}) == URL_GIT
    assert resolve_webhook(URL_CFG, None, {}) == URL_CFG
    assert resolve_webhook(URL_CFG, {GIT_KEY: ""}, {ENV_VAR: ""}) == URL_CFG
    assert resolve_webhook("  ", {}, {ENV_VAR: " "}) is None
    assert resolve_webhook(None, None, {}) is None
    assert resolve_webhook(f" {URL_CFG}\n", None, {}) == URL_CFG


@pytest.mark.parametrize("where, expected", [
    ("env", ENV_VAR), ("git", GIT_KEY), ("config", "webhook_url in sweep.yaml")])
def test_resolve_rejects_non_http_naming_source_not_value(where, expected):
    bad = "ftp://user:s3cr3t@example.org/hook"
    args = {"config_value": URL_CFG, "git_config": {GIT_KEY: URL_GIT},
            "environ": {}}
    if where == "env":
        args["environ"] = {ENV_VAR: bad}
    elif where == "git":
        args["git_config"] = {GIT_KEY: bad}
    else:
        args = {"config_value": bad, "git_config": None, "environ": {}}
    with pytest.raises(UsageError) as info:
        resolve_webhook(**args, config_source="simulation.webhook_url in sweep.yaml")
    message = str(info.value)
    assert expected in message
    assert "s3cr3t" not in message and "example.org" not in message


def test_resolve_only_validates_the_winning_value():
    assert resolve_webhook("garbage", None, {ENV_VAR: URL_ENV}) == URL_ENV


@pytest.mark.parametrize("url, key", [
    ("https://hooks.slack.com/services/T/B/X", "text"),
    ("https://discord.com/api/webhooks/1/abc", "content"),
    ("https://org.webhook.office.com/webhookb2/x", "text"),
])
def test_service_payloads_carry_the_message(url, key):
    payload = build_payload(url, "Title", "Body", {"k": "v"})
    assert "Body" in payload[key]
    if key == "content":
        assert set(payload) == {"content"}  # Discord gets only what it knows


def test_teams_workflow_gets_an_adaptive_card():
    url = "https://prod-1.westeurope.logic.azure.com/workflows/x/triggers/manual/paths/invoke"
    payload = build_payload(url, "Title", "Body", {"k": "v"})
    attachment = payload["attachments"][0]
    assert attachment["contentType"] == "application/vnd.microsoft.card.adaptive"
    body = attachment["content"]["body"]
    assert [b["text"] for b in body[:2]] == ["Title", "Body"]
    assert body[2]["facts"] == [{"title": "k", "value": "v"}]


def test_lookalike_hosts_get_the_generic_payload():
    payload = build_payload("https://notdiscord.com/x", "Title", "Body")
    assert {"text", "content", "title", "summary", "facts"} <= set(payload)


def test_descriptions():
    title, text = describe_submission("alpha", 12, 3, "slurm")
    assert "alpha" in title and "12 simulations" in text and "3 jobs" in text
    assert "slurm" in text
    assert "1 simulation " in describe_submission("a", 1, 1, "local")[1]

    title, text = describe_completion("alpha", {"COMPLETED": 4}, "0123456789abcdef")
    assert "all 4 succeeded" in title and "4 COMPLETED" in text
    assert "0123456789ab" in text and "0123456789abcdef" not in text

    states = {notify.JobState.COMPLETED: 2, notify.JobState.FAILED: 1, "TIMEOUT": 0}
    title, text = describe_completion("alpha", states, None)
    assert "1 of 3" in title and "2 COMPLETED" in text and "1 FAILED" in text
    assert "TIMEOUT" not in text and "JobState" not in text
