"""Keeping secrets out of everything we write.

A job's environment is recorded so that a run can be understood later, but an
environment routinely holds API tokens, passwords and webhook URLs. Anything
whose name looks secret is replaced before it reaches a file, the store or a
commit; so are values that look like URLs carrying credentials.
"""
from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

REDACTED = "<redacted>"

_SECRET_NAME = re.compile(
    r"(TOKEN|SECRET|PASSWORD|PASSWD|PASSPHRASE|CREDENTIAL|API_?KEY|"
    r"ACCESS_?KEY|PRIVATE_?KEY|AUTH|WEBHOOK|COOKIE|SESSION|_KEY$|^KEY$|PWD_)",
    re.IGNORECASE)
# Variables that match the name pattern but are known to be harmless and are
# useful to keep (PWD is the working directory, not a password).
_HARMLESS = frozenset({"PWD", "OLDPWD", "SSH_AUTH_SOCK", "XAUTHORITY",
                       "DATALAD_SLURMSWEEP_TOKEN"})
# user:password@host in any URL, and URLs of well-known webhook services.
_URL_CREDENTIALS = re.compile(r"(?P<scheme>[a-z][a-z0-9+.-]*://)[^/\s:@]+:[^/\s@]+@", re.I)
_WEBHOOK_URL = re.compile(
    r"https?://(hooks\.slack\.com|discord(app)?\.com/api/webhooks|"
    r"[^/\s]*webhook[^\s]*|outlook\.office\.com/webhook|[^/\s]*\.webhook\.office\.com)"
    r"[^\s\"']*", re.I)


def is_secret_name(name: str) -> bool:
    return name not in _HARMLESS and bool(_SECRET_NAME.search(name))


def redact_value(value: str) -> str:
    value = _URL_CREDENTIALS.sub(lambda m: m.group("scheme") + REDACTED + "@", value)
    return _WEBHOOK_URL.sub(REDACTED, value)


def redact_environment(env: Mapping[str, str]) -> dict[str, str]:
    return {name: (REDACTED if is_secret_name(name) else redact_value(value))
            for name, value in sorted(env.items())}


def redact_tree(obj: Any) -> Any:
    """Redact a JSON-like structure: secret-named keys and credential URLs."""
    if isinstance(obj, dict):
        return {k: (REDACTED if isinstance(k, str) and is_secret_name(k)
                    and obj[k] not in (None, "") else redact_tree(v))
                for k, v in obj.items()}
    if isinstance(obj, list):
        return [redact_tree(v) for v in obj]
    if isinstance(obj, str):
        return redact_value(obj)
    return obj
