"""Best-effort webhook notifications: a sweep was submitted, a sweep finished.

A notification is a courtesy, never part of the sweep: nothing here raises
out of ``send`` and nothing may hold up scheduling or finishing for longer
than the timeout. A webhook URL is a bearer secret (anyone holding it can
post to the channel), so it never appears in an error, a reason or a log line.
"""
from __future__ import annotations

import http.client
import json
import logging
import os
import threading
import urllib.error
import urllib.request
from collections.abc import Mapping
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from ..backends.base import JobState
from ..errors import SlurmsweepError, UsageError
from ..jobs.listing import open_count
from ..redact import redact_value
from ..settings import WEBHOOK_URL

lgr = logging.getLogger("datalad.slurmsweep.notify")

ENV_VAR = WEBHOOK_URL.env
GIT_KEY = WEBHOOK_URL.key
CONFIG_SOURCE = "simulation.webhook_url in the sweep configuration"


def _is_http_url(value: str) -> bool:
    try:
        parts = urlsplit(value)
        parts.port  # noqa: B018  (raises ValueError on a malformed port)
    except ValueError:
        return False
    return (parts.scheme.lower() in ("http", "https") and bool(parts.hostname)
            and not any(c.isspace() or ord(c) < 32 for c in value))


def resolve_webhook(config_value: str | None, git_config: Any | None,
                    environ: Mapping[str, str] = os.environ, *,
                    config_source: str = CONFIG_SOURCE) -> str | None:
    """The webhook URL to notify, or None when notifications are off.

    Precedence: environment variable, git config, sweep configuration, so a
    user can redirect a shared sweep without editing it. Empty or
    blank values count as unset (so they cannot switch notifications off).
    Only the winning value is validated; an
    invalid one raises UsageError naming its source (``config_source`` lets
    the caller name the file and key) but never the value itself.
    """
    git_value = git_config.get(GIT_KEY, None) if git_config is not None else None
    candidates = ((environ.get(ENV_VAR), f"environment variable {ENV_VAR}"),
                  (git_value, f"git config {GIT_KEY}"),
                  (config_value, config_source))
    for value, source in candidates:
        if value is None or not str(value).strip():
            continue
        value = str(value).strip()
        if not _is_http_url(value):
            raise UsageError(f"{source} is not an http(s) URL "
                             "(value not shown: webhook URLs are secret)")
        return value
    return None


def _render(title: str, text: str, facts: Mapping[str, str], bold: str) -> str:
    lines = [f"{bold}{title}{bold}", text] if title else [text]
    lines += [f"{k}: {v}" for k, v in facts.items()]
    return "\n".join(line for line in lines if line)


def _host_in(host: str, *domains: str) -> bool:
    return any(host == d or host.endswith("." + d) for d in domains)


def build_payload(url: str, title: str, text: str,
                  facts: Mapping[str, str] | None = None) -> dict[str, Any]:
    """The JSON body for the service behind ``url``.

    One flat body cannot serve everyone: Teams Workflows (Power Automate)
    only accept Adaptive Cards, and Discord rejects bodies without
    ``content``/``embeds``. Known hosts get their own shape; anything else
    gets a generic body whose ``text`` (Slack-compatible receivers) and
    ``content`` (Discord-compatible receivers) both carry the full message.
    """
    facts = dict(facts or {})
    host = (urlsplit(url).hostname or "").lower()
    if host == "hooks.slack.com":
        return {"text": _render(title, text, facts, "*")}
    if _host_in(host, "discord.com", "discordapp.com"):
        # Discord refuses content longer than 2000 characters.
        return {"content": _render(title, text, facts, "**")[:2000]}
    if _host_in(host, "logic.azure.com", "powerplatform.com", "powerautomate.com"):
        body: list[dict[str, Any]] = [
            {"type": "TextBlock", "text": title, "weight": "Bolder", "size": "Medium",
             "wrap": True},
            {"type": "TextBlock", "text": text, "wrap": True}]
        if facts:
            body.append({"type": "FactSet",
                         "facts": [{"title": k, "value": v} for k, v in facts.items()]})
        card = {"$schema": "http://adaptivecards.io/schemas/adaptive-card.json",
                "type": "AdaptiveCard", "version": "1.2", "body": body}
        return {"type": "message", "attachments": [
            {"contentType": "application/vnd.microsoft.card.adaptive",
             "contentUrl": None, "content": card}]}
    if _host_in(host, "webhook.office.com", "outlook.office.com"):
        # The retiring Office 365 connectors take a legacy MessageCard.
        card = {"@type": "MessageCard", "@context": "https://schema.org/extensions",
                "summary": title, "title": title, "text": text}
        if facts:
            card["sections"] = [{"facts": [{"name": k, "value": v}
                                           for k, v in facts.items()]}]
        return card
    full = _render(title, text, facts, "")
    return {"text": full, "title": title, "summary": title, "content": full,
            "facts": facts}


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    # urllib turns a redirected POST into a GET without a body, which would
    # report "sent" for a message nobody received: treat 3xx as a failure.
    def redirect_request(self, req, fp, code, msg, headers, newurl):
        return None


def _scrub(message: str, url: str) -> str:
    """An exception's text without the URL or any recognisable part of it."""
    parts = urlsplit(url)
    for piece in sorted({url, parts.netloc, parts.hostname or "", parts.path},
                        key=len, reverse=True):
        if len(piece) > 1:
            message = message.replace(piece, "webhook")
    return redact_value(message)[:200]


def _post(url: str, data: bytes, timeout: float) -> tuple[bool, str]:
    request = urllib.request.Request(
        url, data=data, method="POST",
        headers={"Content-Type": "application/json",
                 "User-Agent": "datalad-slurmsweep"})
    opener = urllib.request.build_opener(_NoRedirect)
    try:
        with opener.open(request, timeout=timeout) as response:
            response.read(65536)  # let the server finish; the body is not needed
            return True, "sent"
    except urllib.error.HTTPError as exc:
        return False, f"webhook answered HTTP {exc.code}"
    except urllib.error.URLError as exc:
        return False, _scrub(f"webhook unreachable: {exc.reason}", url)
    except TimeoutError:
        return False, f"webhook timed out after {timeout:g}s"
    except (OSError, ValueError, http.client.HTTPException) as exc:  # best effort
        return False, _scrub(f"webhook failed: {type(exc).__name__}: {exc}", url)


def send(url: str, title: str, text: str, *, timeout: float = 5.0,
         facts: dict[str, str] | None = None) -> tuple[bool, str]:
    """POST a notification; (True, "sent") or (False, reason). Never raises.

    urllib's timeout bounds each socket operation, not the request, and not
    name resolution: a server trickling one byte per second could hold us
    forever. The request therefore runs in a daemon thread that we abandon
    after ``timeout`` seconds.
    """
    try:
        if not _is_http_url(url):
            outcome = (False, "webhook URL is not an http(s) URL")
        else:
            data = json.dumps(build_payload(url, title, text, facts)).encode()
            result: list[tuple[bool, str]] = []
            worker = threading.Thread(
                target=lambda: result.append(_post(url, data, timeout)),
                name="slurmsweep-webhook", daemon=True)
            worker.start()
            worker.join(timeout)
            outcome = result[0] if result else (
                False, f"webhook timed out after {timeout:g}s")
    except (TypeError, ValueError, RuntimeError) as exc:  # e.g. facts JSON cannot hold
        outcome = (False, _scrub(f"webhook failed: {type(exc).__name__}: {exc}", url))
    if outcome[0]:
        lgr.debug("webhook notification sent: %s", title)
    else:
        lgr.warning("webhook notification not sent (%s): %s", title, outcome[1])
    return outcome


def describe_submission(sweep_name: str, n_points: int, n_jobs: int,
                        backend: str) -> tuple[str, str]:
    title = f"Sweep '{sweep_name}' submitted"
    text = (f"{n_points} simulation{'s' if n_points != 1 else ''} submitted in "
            f"{n_jobs} job{'s' if n_jobs != 1 else ''} to {backend}.")
    return title, text


def describe_completion(sweep_name: str, counts_by_state: Mapping[str, int],
                        commit: str | None) -> tuple[str, str]:
    # Keys may be JobState members; str() of a str-enum is "JobState.X".
    counts = {getattr(k, "value", str(k)): n for k, n in counts_by_state.items() if n}
    total = sum(counts.values())
    ok = sum(n for k, n in counts.items() if JobState.parse(k).is_success)
    if ok == total:
        title = f"Sweep '{sweep_name}' finished: all {total} succeeded"
    else:
        title = f"Sweep '{sweep_name}' finished: {total - ok} of {total} did not succeed"
    text = ", ".join(f"{n} {k}" for k, n in sorted(counts.items())) or "no simulations"
    text += f"; results saved in commit {commit[:12]}." if commit else "; nothing committed."
    return title, text


def notify_completed_sweeps(root: Path, store: Any, git_config: Any, jobs: list,
                            statuses: Mapping) -> None:
    """Best effort: tell a sweep's webhook when its last open point is finished."""
    from .config import load_config
    by_sweep: dict[str, list] = {}
    for job in jobs:
        if job.sweep:
            by_sweep.setdefault(job.sweep.root, []).append(job)
    for sweep, members in by_sweep.items():
        if open_count(store, sweep):
            continue  # points still open
        config = root / members[0].sweep.config
        try:
            # Parsing a 100,000-point configuration takes seconds: only a
            # file that names a webhook is read as YAML.
            named = config.is_file() and "webhook_url" in config.read_text(errors="replace")
            url = resolve_webhook(load_config(config).webhook_url if named else None,
                                  git_config)
        except (SlurmsweepError, OSError) as exc:
            lgr.warning("no completion message for sweep %s: %s", sweep, exc)
            continue
        if url:
            states = [statuses[j.job_id].state.value for j in members]
            title, text = describe_completion(
                members[0].sweep.name or sweep, {s: states.count(s) for s in set(states)}, None)
            send(url, title, text)
