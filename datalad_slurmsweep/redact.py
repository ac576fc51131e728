"""Keeping secrets out of everything we write.

Environments, command lines, the sweep configuration and our commit messages
are recorded so that a run can be understood later, and any of them can carry
tokens, passwords and webhook URLs; history is forever. Three nets, each
catching what the others miss: by name (the value of ``DB_PASSWORD``,
``--api-key``, ``"clientSecret":``), by value (URL credentials, secret query
parameters, webhook URLs, JWTs, private keys, ``Bearer``/``Basic``
credentials, tokens of well-known shapes, anywhere) and by position (the word
after ``--token``, the values in ``--export=NAME=value``). Every function
leaves all but the secret part untouched, never raises for a string, and is
idempotent, so a record redacted under older patterns can be redacted again.
"""
from __future__ import annotations

import base64
import binascii
import bisect
import re
from collections.abc import Callable, Mapping
from functools import lru_cache
from typing import Any

REDACTED = "<redacted>"

# -- names -------------------------------------------------------------------
# Matched on a normalised name (apiKey, api-key and API_KEY all read API_KEY).
# Long words are secret anywhere in a name; TOKEN except in TOKENS (counts of
# language-model tokens: MAX_TOKENS) and TOKENIZER(S_PARALLELISM).
_SECRET_WORD = re.compile(
    r"SECRET|PASSWORD|PASSWD|PASSPHRASE|CREDENTIAL|PRIVATE_?KEY|API_?KEY|ACCESS_?KEY|"
    r"WEBHOOK|COOKIE|AUTHORIZATION|SESSIONID|SESSID|CONNECTION_?STRING|TOKEN(?!IZ|S(?:_|$))")
# Short words only as a whole segment: as substrings they are in harmless
# names (PATH holds PAT, BYPASS and PASSENGER hold PASS, AUTHOR holds AUTH).
# PWD also ends a word (MYSQLPWD). KEY only after something (GPG_KEY,
# AccountKey): a bare "key" is a lookup key, as in our own sweep grids.
_SECRET_SEGMENT = re.compile(r"(?:^|_)(?:PASS|PWD|PAT|JWT|DSN|AUTH)(?:_|$)|PWD$|._KEYS?$")
# Names that match but hold no secret: the working directories, and names
# saying they hold a path, a socket, a command, a switch or a public key. A
# path reveals where a secret is, not what it is. GOOGLE_APPLICATION_
# CREDENTIALS is redacted all the same: its name does not say "path", and
# similar variables of other tools hold the credentials themselves.
_HARMLESS_NAME = frozenset({"PWD", "OLDPWD"})
_HARMLESS_SHAPE = re.compile(r"_(?:FILE|PATH|DIR|SOCK|STDIN|CMD|COMMAND)$|PUB(?:LIC)?_?KEYS?$"
                             r"|^(?:NO|USE|ASK|ENABLE|DISABLE|WITH|WITHOUT)_")
# In a URL query these are secrets too: ?key= (Google), ?sig= (Azure SAS).
_SECRET_PARAM = re.compile(r"(?:^|_)(?:KEY|SIG|SIGNATURE)$")
# Our own recovery token (the Slurm comment) is public by design, squeue shows
# it to everyone; it is kept even under a secret-looking name.
_OWN_TOKEN = re.compile(r"dlss-[0-9a-f]{32}")
# What only refers to a secret, and switches (see _keep).
_REFERENCE = re.compile(r"(?:(?:bearer|basic|token)\s+)?(?:[$<%{]|"
                        r"(?:true|false|yes|no|on|off|none|null|nil|0|1)$)", re.I)
_CAMEL = re.compile(r"([a-z0-9])([A-Z])")
_NON_ALNUM = re.compile(r"[^A-Za-z0-9]+")


@lru_cache(maxsize=4096)
def _normalise(name: str) -> str:
    return _NON_ALNUM.sub("_", _CAMEL.sub(r"\1_\2", name)).upper().strip("_")


def is_secret_name(name: str) -> bool:
    norm = _normalise(name)
    if norm in _HARMLESS_NAME or _HARMLESS_SHAPE.search(norm):
        return False
    return bool(_SECRET_WORD.search(norm) or _SECRET_SEGMENT.search(norm))


def _keep(value: str, lenient: bool) -> bool:
    """Whether a value in a secret-looking place is no secret: empty, already
    redacted, our own token; in free text (lenient) also references such as
    ``$TOKEN``, ``${{ secrets.X }}``, ``<your-token>`` and switches: a script
    reading its token from the environment is no leak, --check must not warn."""
    core = value.strip("\"'")
    if not core or core == REDACTED or _OWN_TOKEN.fullmatch(core):
        return True
    return lenient and bool(_REFERENCE.match(core))


# -- values ------------------------------------------------------------------
# A rule is a pattern and a judge: the judge returns (replacement, what it
# was) for a match that is a secret, None for one that is not.
Judge = Callable[[re.Match[str], bool], tuple[str, str] | None]

_PRIVATE_KEY = re.compile(
    r"-----BEGIN (?P<kind>[A-Z0-9 ]{0,40}PRIVATE KEY(?: BLOCK)?)-----(?P<body>[\s\S]*?)"
    r"(?:-----END [A-Z0-9 ]{0,40}PRIVATE KEY(?: BLOCK)?-----|\Z)")
_HTTP_URL = re.compile(r"(?<![A-Za-z])https?://[^\s\"'<>`]+", re.I)
# Slack, Discord, Teams/Office, Power Automate (Logic Apps), Google Chat,
# Zapier, IFTTT, Mattermost (/hooks/) and anything calling itself a webhook:
# the URL is the credential, so all of it goes.
_WEBHOOK = re.compile(r"webhook|://(?:[^/?#]*[.@])?hooks\.|/hooks/|discord(?:app)?\.com/api/"
                      r"|\.logic\.azure\.com|powerplatform\.com|powerautomate"
                      r"|chat\.googleapis\.com|maker\.ifttt\.com", re.I)
# Any scheme://userinfo@ is a credential: user:password, :password (redis),
# a key alone (Sentry DSN). The lookbehind keeps the scan linear.
_USERINFO = re.compile(r"(?<![A-Za-z0-9+.-])[A-Za-z][A-Za-z0-9+.-]*://(?P<val>[^\s/?#\"'`]+)@")
_QUERY = re.compile(r"[?&](?P<name>[A-Za-z0-9_.\-\[\]%]{1,80})=(?P<val>[^&#\s\"'`]+)")
_SHAPES = {
    "a JWT": r"eyJ[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]*",
    "a GitHub token": r"gh[pousr]_[A-Za-z0-9]{20,}|github_pat_[A-Za-z0-9_]{20,}",
    "a GitLab token": r"gl(?:pat|dt|rt|ptt|cbt|ft|soat)-[A-Za-z0-9_-]{20,}",
    "a Slack token": r"xox[abprse]-[A-Za-z0-9-]{10,}|xapp-[A-Za-z0-9-]{10,}",
    "an AWS access key id": r"(?:AKIA|ASIA|ABIA|ACCA)[0-9A-Z]{16}(?![0-9A-Za-z])",
    "a Google API key": r"AIza[0-9A-Za-z_-]{35}",
    "a Hugging Face token": r"hf_[A-Za-z0-9]{30,}",
    "an npm token": r"npm_[A-Za-z0-9]{36}",
    "a PyPI token": r"pypi-AgE[A-Za-z0-9_-]{50,}",
    "a Stripe key": r"[sr]k_(?:live|test)_[A-Za-z0-9]{16,}",
    "a Docker Hub token": r"dckr_pat_[A-Za-z0-9_-]{20,}",
    "a SendGrid key": r"SG\.[A-Za-z0-9_-]{16,}\.[A-Za-z0-9_-]{16,}",
    "an API secret key (sk-)": r"sk-[A-Za-z0-9][A-Za-z0-9_-]{19,}",
}
# One scan for all shapes (with a named group each it is several times
# slower); which shape it was is asked only of the rare match.
_SHAPE = re.compile(r"(?<![A-Za-z0-9])(?:" + "|".join(_SHAPES.values()) + ")")
_SHAPE_KINDS = [(re.compile(pattern), kind) for kind, pattern in _SHAPES.items()]
_AUTH_SCHEME = re.compile(
    r"(?<![A-Za-z])(?P<scheme>Bearer|Basic|Token)[ \t]+(?P<val>[A-Za-z0-9._~+/=-]{8,})", re.I)
# curl -u user:password and friends: the user stays, the password goes.
_USERPASS = re.compile(r"(?<![\w-])(?:-u|--user|--proxy-user)(?:=|[ \t]+)(?P<q>[\"']?)"
                       r"[^\s:\"']*:(?P<val>[^\s\"']+)(?P=q)")


def _random_looking(s: str) -> bool:  # tokens mix digits and letters, or are long
    return len(s) >= 32 or (any(c.isdigit() for c in s) and any(c.isalpha() for c in s))


def _basic_credentials(s: str) -> bool:  # base64("user:password"), not "Basic usage"
    try:
        text = base64.b64decode(s + "=" * (-len(s) % 4)).decode("utf-8")
    except (binascii.Error, ValueError):
        return False
    return ":" in text and text.isprintable()


def _swap(m: re.Match[str], group: str = "val") -> str:  # the match, one group redacted
    start, end = m.span(group)
    return m.string[m.start():start] + REDACTED + m.string[end:m.end()]


def _judge_private_key(m: re.Match[str], lenient: bool) -> tuple[str, str] | None:
    # A key cut off before its END line (a truncated value) goes to the end.
    kind, done = m.group("kind"), m.group("body") == REDACTED and m.group(0).endswith("-----")
    return None if done else (f"-----BEGIN {kind}-----{REDACTED}-----END {kind}-----",
                              "a private key")


def _judge_url(m: re.Match[str], lenient: bool) -> tuple[str, str] | None:
    return (REDACTED, "a webhook URL") if _WEBHOOK.search(m.group(0)) else None


def _judge_userinfo(m: re.Match[str], lenient: bool) -> tuple[str, str] | None:
    return None if _keep(m.group("val"), lenient) else (_swap(m), "credentials in a URL")


def _judge_query(m: re.Match[str], lenient: bool) -> tuple[str, str] | None:
    name = m.group("name")
    secret = is_secret_name(name) or _SECRET_PARAM.search(_normalise(name))
    if not secret or _keep(m.group("val"), lenient):
        return None
    return _swap(m), f"a secret URL parameter ({_show(name)})"


def _judge_shape(m: re.Match[str], lenient: bool) -> tuple[str, str] | None:
    kind = next((kind for shape, kind in _SHAPE_KINDS if shape.match(m.group(0))), "a token")
    if kind.startswith("an API secret") and not _random_looking(m.group(0)[3:]):
        return None  # sk-learn-benchmark-results: a name, not a key
    return REDACTED, kind


def _judge_auth(m: re.Match[str], lenient: bool) -> tuple[str, str] | None:
    scheme, val = m.group("scheme"), m.group("val")
    if _keep(val, lenient):
        return None
    secret = _basic_credentials(val) if scheme.lower() == "basic" else _random_looking(val)
    return (_swap(m), f"a {scheme.capitalize()} credential") if secret else None


def _judge_userpass(m: re.Match[str], lenient: bool) -> tuple[str, str] | None:
    return None if _keep(m.group("val"), lenient) else (_swap(m), "a password for -u/--user")


# Order matters: whole private keys and webhook URLs first, so that narrower
# rules never leave a piece of them behind. Each rule comes with strings one
# of which every match of it contains: "in" is far cheaper than a scan, and
# most values (paths) contain none of them.
_RULES: list[tuple[tuple[str, ...], re.Pattern[str], Judge]] = [
    (("-----BEGIN",), _PRIVATE_KEY, _judge_private_key), (("://",), _HTTP_URL, _judge_url),
    (("://",), _USERINFO, _judge_userinfo), (("=",), _QUERY, _judge_query),
    ((), _SHAPE, _judge_shape), ((" ", "\t"), _AUTH_SCHEME, _judge_auth),
    (("-u",), _USERPASS, _judge_userpass),
]

# -- assignments ---------------------------------------------------------------
# A name and its operator; the value is read after it (_value_span):
# "name": / "name" = / ["name"] = (JSON, Python), --name=value and
# --name value (options), NAME=value / name = value (shell, Python, libpq,
# connection strings) and Name: value (YAML, HTTP headers).
_NAME_OP = re.compile(r"""
    (?P<q>["'])(?P<qname>[A-Za-z_][^"'\n=:]{0,199})(?P=q)\]?[ \t]*(?:[:=](?!=))[ \t]*
  | (?<![\w.\-])--(?P<oname>[A-Za-z][\w.\-]*)(?:=|[ \t]+(?=[^\s\-]))
  | (?<![\w.])(?<![\w.]-)(?P<bname>[A-Za-z_][\w.\-]*)(?:[ \t]*=(?!=)[ \t]*|(?P<colon>:)[ \t]+)
""", re.X)
_ASSIGNMENT_HINTS = ("=", ": ", ":\t", " :", "\t:", '":', "':", "]:", "--")
_QUOTED = re.compile(r"\"(?:[^\"\\\n]|\\.)*\"|'[^'\n]*'")
_REST_OF_LINE = re.compile(r"[^\n]*[^\s]")
_JSON_WORD = re.compile(r"[^\s,}\]]+")
_SHELL_WORD = re.compile(r"[^\s&;,|)\"'`]+")


def _value_span(text: str, m: re.Match[str]) -> tuple[int, int] | None:
    """Where the value after a name and operator is: inside quotes if quoted;
    after "Name:" the rest of the line (YAML and header values have spaces),
    or of the quoted string around it (-H "Authorization: Bearer x"); else
    one word."""
    pos = m.end()
    if quoted := _QUOTED.match(text, pos):
        return quoted.start() + 1, quoted.end() - 1
    opening = text[m.start() - 1:m.start()]
    if m.group("colon") and opening in ("'", '"'):
        line_end = text.find("\n", pos)
        end = text.find(opening, pos, len(text) if line_end < 0 else line_end)
        return (pos, end) if end > pos else None
    word = (_REST_OF_LINE if m.group("colon") else
            _JSON_WORD if m.group("qname") else _SHELL_WORD).match(text, pos)
    return word.span() if word else None


def _assignments(text: str, lenient: bool, found: list[tuple[int, str]] | None = None) -> str:
    """Values of secret-named assignments redacted. After a harmless name the
    scan resumes at its value, so --export=TOKEN=x is looked into."""
    parts, pos = [], 0
    while m := _NAME_OP.search(text, pos):
        name = m.group("qname") or m.group("oname") or m.group("bname")
        # The name first: reading a value can take the rest of the line.
        span = _value_span(text, m) if is_secret_name(name) else None
        if span and not _keep(text[span[0]:span[1]], lenient):
            parts.append(text[pos:span[0]] + REDACTED)
            pos = span[1]
            if found is not None:
                found.append((m.start(), f"a value for {_show(name)}"))
        else:
            parts.append(text[pos:m.end()])
            pos = m.end()
    parts.append(text[pos:])
    return "".join(parts)


def _show(name: str) -> str:  # a name for a warning, with no secret riding along
    return name if len(name) <= 60 and _redact(name, False) == name else "a secret-looking name"


def _redact(text: str, lenient: bool, hints: bool = True) -> str:
    if not isinstance(text, str):
        return text
    for needs, pattern, judge in _RULES:
        if not hints or not needs or any(n in text for n in needs):
            text = pattern.sub(lambda m, j=judge: (j(m, lenient) or (m.group(0),))[0], text)
    if not hints or any(n in text for n in _ASSIGNMENT_HINTS):
        text = _assignments(text, lenient)
    return text


def redact_value(value: str) -> str:
    """A value (of a variable, a field, an argument) with every secret part
    replaced. Strict: ``$X`` in a value is literal, not a reference."""
    return _redact(value, lenient=False)


def redact_text(text: str) -> str:
    """Free text (commit messages, YAML, JSON, scripts) with every secret part
    and every value of a secret-named assignment replaced. References to
    secrets (``TOKEN=$TOKEN``) are kept: they are what a script should do."""
    return _redact(text, lenient=True)


def secret_findings(text: str) -> list[tuple[int, str]]:
    """(line number, what) for every secret in a file's text, the secret itself
    left out, for warnings such as "job.sh line 3: a GitHub token"."""
    found: list[tuple[int, str]] = []
    for _, pattern, judge in _RULES:
        found += [(m.start(), hit[1]) for m in pattern.finditer(text) if (hit := judge(m, True))]
    _assignments(text, True, found)
    newlines = [m.start() for m in re.finditer("\n", text)]
    return sorted({(bisect.bisect_left(newlines, pos) + 1, what) for pos, what in found})


# -- command lines, environments, trees ------------------------------------------
_ARG_ASSIGN = re.compile(r"(?P<lead>-{0,2})(?P<name>[A-Za-z_][\w.\-]*)=(?P<val>.+)", re.S)
# Every character falls in one piece, so that the list is cut at the commas
# outside quotes and put together again unchanged.
_EXPORT_PIECE = re.compile(r"'[^']*'|\"[^\"]*\"|[^,'\"]+|['\",]")
_IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


def _redact_export(value: str) -> str:
    """--export's list: names, ALL and NONE stay, values of secret names go,
    other values are redacted by value. A bare item after a secret is taken
    for a piece of it (a comma in a password) unless it is a variable name:
    Slurm itself reads it as one."""
    items = [""]
    for piece in _EXPORT_PIECE.findall(value):
        if piece == ",":
            items.append("")
        else:
            items[-1] += piece
    out, after_secret = [], False
    for item in items:
        name, eq, val = item.partition("=")
        if eq and is_secret_name(name) and not _keep(val, False):
            out.append(f"{name}={REDACTED}")
        elif eq:
            out.append(f"{name}={redact_value(val)}")
        elif after_secret and not _IDENTIFIER.fullmatch(item) and item != REDACTED:
            out.append(REDACTED)
            continue
        else:
            out.append(redact_value(item))
        after_secret = out[-1].endswith("=" + REDACTED)
    return ",".join(out)


def _redact_word(word: str) -> str:
    if word.startswith("--export="):
        return "--export=" + _redact_export(word[len("--export="):])
    # A whole word NAME=value or --name=value: the value is all the rest,
    # spaces and all (env TOKEN="a b" run reaches us as TOKEN=a b).
    m = _ARG_ASSIGN.fullmatch(word)
    if m and is_secret_name(m.group("name")) and not _keep(m.group("val"), False):
        return f"{m.group('lead')}{m.group('name')}={REDACTED}"
    return redact_value(word)


def _redact_announced(kind: str, word: str) -> str:
    """The word after --export, -u/--user or a secret-named option."""
    if kind == "export":
        return _redact_export(word)
    user, colon, password = word.partition(":")
    if kind == "userpass":  # curl -u user:password; without a colon curl asks
        keep = not colon or _keep(password, False)
        return redact_value(word) if keep else f"{redact_value(user)}:{REDACTED}"
    return word if _keep(word, False) else REDACTED


def redact_argv(argv: list[str]) -> list[str]:
    """A command line, word by word: values of --export, of secret-named
    options (--token x, --password=x), of NAME=value words with a secret
    name, and every secret-shaped part of any word. --comment's value is
    redacted by value only: it carries our recovery token, which must stay."""
    out: list[str] = []
    kind: str | None = None
    for word in argv:
        if not isinstance(word, str):
            out.append(word)
            kind = None
        elif kind and not (word.startswith("-") and len(word) > 1):
            out.append(_redact_announced(kind, word))
            kind = None
        else:
            out.append(_redact_word(word))
            kind = ("export" if word == "--export" else
                    "userpass" if word in ("-u", "--user", "--proxy-user") else
                    "secret" if word.startswith("--") and "=" not in word
                    and is_secret_name(word[2:]) else None)
    return out


def _redact_named(name: Any, value: Any) -> Any:
    """A value under a name: all of it if the name looks secret (but None,
    booleans and empty strings: nothing to hide), else its secret parts."""
    if (isinstance(name, str) and is_secret_name(name) and value is not None
            and not isinstance(value, bool)
            and not (isinstance(value, str) and _keep(value, False))):
        return REDACTED
    return redact_tree(value)


def redact_environment(env: Mapping[str, str]) -> dict[str, str]:
    return {name: _redact_named(name, value) for name, value in sorted(env.items())}


def redact_tree(obj: Any) -> Any:
    """A JSON-like structure: values of secret-named keys at any depth, secret
    parts of every string, and lists of strings read as command lines."""
    if isinstance(obj, Mapping):
        return {k: _redact_named(k, v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        out = (redact_argv(list(obj)) if obj and all(isinstance(v, str) for v in obj)
               else [redact_tree(v) for v in obj])
        return out if isinstance(obj, list) else tuple(out)
    if isinstance(obj, str):
        return redact_value(obj)
    return obj
