"""Secrets never reach history: redaction by name, by value and by position.

Every case plants a secret and asserts that not a piece of it survives; the
harmless cases assert that what carries no secret is left exactly as it was,
because a record stripped of PATH or of a git SHA explains nothing.
"""
from __future__ import annotations

import json
import random
import string
import time

import pytest

from datalad_slurmsweep import redact as r
from datalad_slurmsweep.redact import (
    REDACTED,
    is_secret_name,
    redact_argv,
    redact_environment,
    redact_text,
    redact_tree,
    redact_value,
    secret_findings,
)

_RNG = random.Random(20240611)
_ALNUM = string.ascii_letters + string.digits


def rnd(n: int, alphabet: str = _ALNUM) -> str:
    """A random-looking secret body: letters and digits, as real tokens are."""
    body = "".join(_RNG.choice(alphabet) for _ in range(n - 2))
    return "Q7" + body  # at least one digit and one letter


GHP = "ghp_" + rnd(36)
JWT = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0." + rnd(43, _ALNUM + "_-")
PEM_BODY = "MIIEpAIBAAKCAQEA" + rnd(60)
PEM = f"-----BEGIN RSA PRIVATE KEY-----\n{PEM_BODY}\n{rnd(64)}\n-----END RSA PRIVATE KEY-----"
DLSS = "dlss-" + "0123456789abcdef" * 2
SHA = "9fceb02d0ae598e95dc970b74767f19372d61af8"
UUID = "123e4567-e89b-12d3-a456-426614174000"
AZURE_SIG = "sv=2022-11-02&ss=b&srt=co&sp=rl&se=2030-01-01&sig=" + rnd(30) + "%3D"

# (environment variable name, value, the secret that must disappear)
ENV_SECRETS = [
    ("REDIS_URL", "redis://:RedisPw0rd77@cache.internal:6379/0", "RedisPw0rd77"),
    ("SENTRY_DSN", "https://a1b2c3d4e5f60718@o1.ingest.sentry.io/1", "a1b2c3d4e5f60718"),
    ("MYSQL_PWD", "my5qlpass", "my5qlpass"),
    ("GH_PAT", "plainvalue123", "plainvalue123"),
    ("CI_JOB_JWT", "short-jwt-ish-42", "short-jwt-ish-42"),
    ("VAULT_JWT", "vaultjwt9", "vaultjwt9"),
    ("ADO_PAT", "adopat77x", "adopat77x"),
    ("DATABASE_DSN", "host=db user=me", "host=db user=me"),
    ("GCP_CREDENTIALS", '{"type": "service_account"}', "service_account"),
    ("AWS_SECRET_ACCESS_KEY", "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY", "wJalrXUtnFEMI"),
    ("AWS_SESSION_TOKEN", "FwoGZXIvYXdzEBYaD" + "x" * 20, "FwoGZXIvYXdzEBYaD"),
    ("GOOGLE_APPLICATION_CREDENTIALS", "/home/u/.config/gcloud/sa-key.json", "sa-key.json"),
    ("DATALAD_SLURMSWEEP_TOKEN", "notourtoken42", "notourtoken42"),
    ("HF_TOKEN", "hfvalue12345", "hfvalue12345"),
    ("NPM_TOKEN", "npmvalue12345", "npmvalue12345"),
    ("SLACK_WEBHOOK", "https://example.org/x", "example.org"),
    ("DB_PASSWD", "passwdvalue1", "passwdvalue1"),
    ("LDAP_PASSWD_HASH", "{SSHA}abc123", "abc123"),
    ("DB_PASS", "dbpass1234", "dbpass1234"),
    ("SLURM_JWT", "slurmjwt99", "slurmjwt99"),
    ("apiKey", "camelcasekey1", "camelcasekey1"),
    ("MY_API_TOKEN", "s3cr3t-value-0042", "s3cr3t-value-0042"),
    ("AZURE_STORAGE_CONNECTION_STRING", "AccountName=a;AccountKey=azkey123==", "azkey123"),
    ("PROXY_AUTHORIZATION", "Basic Zm9vOmJhcg==", "Zm9vOmJhcg"),
    ("GPG_KEY", "gpgkeyvalue7", "gpgkeyvalue7"),
    ("JSESSIONID", "sessid123abc", "sessid123abc"),
]

# Values that carry a secret whatever their variable is called.
VALUE_SECRETS = [
    ("amqp://guest:Amqp0Pass@mq:5672/", "Amqp0Pass"),
    ("amqps://svc:AmqpsPass9@mq/", "AmqpsPass9"),
    ("mongodb+srv://u:M0ngoPass@cluster0.x.mongodb.net/db", "M0ngoPass"),
    ("mongodb://u:M0ngoPlain@h:27017", "M0ngoPlain"),
    ("postgresql://u:Pg5Pass@db/x", "Pg5Pass"),
    ("postgres://u:Pg6Pass@db/x", "Pg6Pass"),
    ("mysql://root:My7Pass@db/x", "My7Pass"),
    ("ftp://anon:Ftp8Pass@files.example.org/pub", "Ftp8Pass"),
    ("sftp://u:Sftp9Pass@h/", "Sftp9Pass"),
    ("ssh://deploy:Ssh1Pass@h:22/repo", "Ssh1Pass"),
    ("s3://AKIDEXAMPLE:S3SecretKey@bucket/key", "S3SecretKey"),
    ("smb://dom;u:Smb2Pass@fs/share", "Smb2Pass"),
    ("rediss://:Rediss3Pw@h:6380", "Rediss3Pw"),
    ("https://oauth2:glpat-token-like@gitlab.example.org/g/r.git", "glpat-token-like"),
    ("https://ApiKeyOnly77@h.example.org/1", "ApiKeyOnly77"),
    ("https://api.example.org/v1?token=Tok3nValue&page=2", "Tok3nValue"),
    ("https://maps.googleapis.com/x?key=MapKey4Value", "MapKey4Value"),
    ("https://h/cb?a=1&access_token=Acc3ssTok", "Acc3ssTok"),
    ("https://acct.blob.core.windows.net/c/f?" + AZURE_SIG, AZURE_SIG.split("sig=")[1]),
    ("https://b.s3.amazonaws.com/k?X-Amz-Signature=abcdef0123456789", "abcdef0123456789"),
    ("https://b.s3.amazonaws.com/k?X-Amz-Credential=AKIDX%2F2024&X-Amz-Date=1",
     "AKIDX%2F2024"),
    ("https://h/x?api_key=ApiKey5Value", "ApiKey5Value"),
    ("https://h/x?apikey=ApiKey6Value", "ApiKey6Value"),
    ("https://h/login?password=Passw0rd7", "Passw0rd7"),
    ("https://h/x?secret=Secr3tValue", "Secr3tValue"),
    ("https://h/x?auth=Auth8Value", "Auth8Value"),
    (f"cookie jar {JWT} end", JWT),
    (f"token in the middle:{GHP};", GHP),
    ("gho_" + "a1B2c3D4e5F6g7H8i9J0k1L2m3N4o5P6q7R8", "a1B2c3D4e5F6g7H8i9J0k1L2"),
    ("x ghu_" + "Z9y8X7w6V5u4T3s2R1q0P9o8N7m6L5k4J3i2" + " y", "Z9y8X7w6V5u4T3s2R1q0"),
    ("ghs_" + "s" * 10 + "1" * 26, "s" * 10 + "1" * 26),
    ("ghr_" + "r" * 10 + "2" * 26, "r" * 10 + "2" * 26),
    ("github_pat_11ABCDEFG0" + "x" * 60, "x" * 60),
    ("glpat-" + "g1" * 10, "g1" * 10),
    ("xoxb-1234567890-0987654321-AbCdEfGhIjKl", "1234567890-0987654321"),
    ("xoxp-1111-2222-3333-abcd", "1111-2222-3333"),
    ("xoxa-2-abcdef123456", "2-abcdef123456"),
    ("xoxr-refresh-123456", "refresh-123456"),
    ("xoxs-legacy-1234567", "legacy-1234567"),
    ("AKIAIOSFODNN7EXAMPLE", "IOSFODNN7EXAMPLE"),
    ("id=ASIAY34FZKBOKMUTVV7A,", "Y34FZKBOKMUTVV7A"),
    ("AIzaSyA-" + "k" * 31, "k" * 31),
    ("sk-" + rnd(48), None),
    ("sk-proj-" + rnd(40, _ALNUM + "-_"), None),
    ("hf_" + rnd(34), None),
    ("npm_" + rnd(36), None),
    (PEM, PEM_BODY),
    ("-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXktdjEAAAAA\n"
     "-----END OPENSSH PRIVATE KEY-----", "b3BlbnNzaC1rZXktdjEAAAAA"),
    ("-----BEGIN PRIVATE KEY-----\\nMIIEvQIBADANBgkqh\\n-----END PRIVATE KEY-----",
     "MIIEvQIBADANBgkqh"),
    ("truncated -----BEGIN EC PRIVATE KEY-----\nMHcCAQEEIIrx", "MHcCAQEEIIrx"),
    ("Authorization: Bearer abc123def456ghi789", "abc123def456ghi789"),
    ("curl -H 'Authorization: Basic dXNlcjpwYXNzd29yZA=='", "dXNlcjpwYXNzd29yZA"),
    ("Bearer " + rnd(40, _ALNUM + "._-"), None),
    ("Authorization: token 0123456789abcdef0123456789abcdef01234567",
     "0123456789abcdef0123456789abcdef01234567"),
    ("https://hooks.slack.com/services/T000/B000/XXXXsecretXXXX", "XXXXsecretXXXX"),
    ("https://discord.com/api/webhooks/123/DiscordSecret", "DiscordSecret"),
    ("https://discordapp.com/api/webhooks/123/DiscordOld", "DiscordOld"),
    ("https://outlook.office.com/webhook/abc/IncomingWebhook/TeamsSecret", "TeamsSecret"),
    ("https://contoso.webhook.office.com/webhookb2/xyz/TeamsNew", "TeamsNew"),
    ("https://prod-12.westus.logic.azure.com:443/workflows/abc/triggers/manual/paths/invoke"
     "?api-version=2016-06-01&sp=%2Ftriggers&sv=1.0", "workflows/abc"),
    ("https://x.environment.api.powerplatform.com/powerautomate/flow1", "flow1"),
    ("https://chat.googleapis.com/v1/spaces/AAAA/messages?threadKey=k", "spaces/AAAA"),
    ("https://mattermost.example.org/hooks/xk3mfr8q7bdyfp", "xk3mfr8q7bdyfp"),
    ("https://ci.example.org/api/webhook/trigger/CiSecret", "CiSecret"),
    ("https://hooks.zapier.com/hooks/catch/1/ZapSecret/", "ZapSecret"),
    ("host=db user=me password=LibPqPass9 dbname=x", "LibPqPass9"),
    ("-Djavax.net.ssl.trustStorePassword=TrustPw1 -Xmx1g", "TrustPw1"),
]

# (argv, the secret)
ARGV_SECRETS = [
    (["sbatch", "--export=ALL,API_TOKEN=ExpTok1,N=1", "job.sh"], "ExpTok1"),
    (["sbatch", "--export", "DB_PASSWORD=ExpPw2", "job.sh"], "ExpPw2"),
    (["sbatch", "--export=NONE,PASSWORD=ab,c%d9", "job.sh"], "c%d9"),
    (["sbatch", "--export=ALL,URL=https://u:ExpUrl3@h", "j"], "ExpUrl3"),
    (["sbatch", "--comment=" + GHP, "job.sh"], GHP),
    (["sbatch", "--comment", "Bearer abc123def456xyz", "job.sh"], "abc123def456xyz"),
    (["env", "TOKEN=EnvTok4", "./run"], "EnvTok4"),
    (["env", "SECRET=with space 5", "./run"], "with space 5"),
    (["tool", "--password=OptPw6"], "OptPw6"),
    (["tool", "--token", "OptTok7"], "OptTok7"),
    (["tool", "--api-key=OptKey8"], "OptKey8"),
    (["tool", "--client-secret", "OptSec9"], "OptSec9"),
    (["curl", "-u", "alice:CurlPw10", "https://h"], "CurlPw10"),
    (["curl", "--user=alice:CurlPw11", "https://h"], "CurlPw11"),
    (["curl", "-H", "Authorization: Bearer hdr123token456", "h"], "hdr123token456"),
    (["bash", "-c", "export GITHUB_TOKEN=BashTok12; ./run"], "BashTok12"),
    (["git", "clone", "https://x-access-token:GitTok13@github.com/o/r"], "GitTok13"),
]

# (free text, the secret)
TEXT_SECRETS = [
    ("#!/bin/bash\nexport GITHUB_TOKEN=ScriptTok1\n./run\n", "ScriptTok1"),
    ("DB_PASSWORD='quoted pw 2' python x.py", "quoted pw 2"),
    ("simulation:\n  api_key: YamlKey3\n  n: 4\n", "YamlKey3"),
    ("db:\n  password: yaml pass phrase 4  # comment\n", "yaml pass phrase 4"),
    ('{"user": "me", "password": "JsonPw5", "n": 1}', "JsonPw5"),
    ('{"clientSecret":"JsonSec6"}', "JsonSec6"),
    ('os.environ["API_TOKEN"] = "PyTok7"\n', "PyTok7"),
    ("login(password=\"PyKw8\")", "PyKw8"),
    ("curl -u alice:TextCurl9 https://h", "TextCurl9"),
    ("curl --token TextOpt10 https://h", "TextOpt10"),
    ("X-Api-Key: HdrKey11\nAccept: */*\n", "HdrKey11"),
    ("private_key_passphrase = 'pp12'", "pp12"),
    ("note\nslurm job 7\n\nwebhook_url: https://example.org/anything\n", "example.org"),
]


@pytest.mark.parametrize("name,value,secret", ENV_SECRETS, ids=[c[0] for c in ENV_SECRETS])
def test_secret_named_variables_are_redacted(name, value, secret):
    out = redact_environment({name: value, "HOME": "/home/u"})
    assert secret not in json.dumps(out)
    assert out["HOME"] == "/home/u"
    assert redact_environment(out) == out


@pytest.mark.parametrize("value,secret", VALUE_SECRETS, ids=range(len(VALUE_SECRETS)))
def test_secret_shaped_values_are_redacted_whatever_the_name(value, secret):
    secret = secret or value.split()[-1]
    for out in (redact_value(value), redact_text(value),
                redact_environment({"HARMLESS": value})["HARMLESS"],
                json.dumps(redact_tree({"a": [{"b": value}, 1]})),
                " ".join(redact_argv(["cmd", value]))):
        assert secret not in out and REDACTED in out
    assert redact_value(redact_value(value)) == redact_value(value)
    assert secret_findings(value), value


@pytest.mark.parametrize("argv,secret", ARGV_SECRETS, ids=range(len(ARGV_SECRETS)))
def test_secrets_on_command_lines_are_redacted(argv, secret):
    out = redact_argv(argv)
    assert len(out) == len(argv) and secret not in " ".join(out)
    assert out[0] == argv[0] and redact_argv(out) == out
    assert secret not in json.dumps(redact_tree({"sbatch_argv": argv}))


@pytest.mark.parametrize("text,secret", TEXT_SECRETS, ids=range(len(TEXT_SECRETS)))
def test_secrets_in_free_text_are_redacted(text, secret):
    out = redact_text(text)
    assert secret not in out and redact_text(out) == out
    assert out.count("\n") == text.count("\n")
    assert secret_findings(text)


def test_export_keeps_names_and_all_none():
    out = redact_argv(["sbatch", "--export=ALL,API_TOKEN=x1,HOME,N=3", "--comment=" + DLSS])
    assert out == ["sbatch", f"--export=ALL,API_TOKEN={REDACTED},HOME,N=3", "--comment=" + DLSS]
    assert redact_argv(["sbatch", "--export=NONE"]) == ["sbatch", "--export=NONE"]
    assert redact_argv(["--token", "--verbose"]) == ["--token", "--verbose"]


def test_tree_redacts_secret_keys_at_any_depth_and_keeps_structure():
    tree = {"a": {"b": [{"client_secret": "deep1"}, {"password": 98765}]},
            "auth": {"user": "u", "pw": "nested2"}, "use_token": True,
            "token": DLSS, "api_key": "", "key": ["synapse", "weight"], "n": 3}
    out = redact_tree(tree)
    assert "deep1" not in json.dumps(out) and "98765" not in json.dumps(out)
    assert out["auth"] == REDACTED and out["a"]["b"][1]["password"] == REDACTED
    assert out["use_token"] is True and out["token"] == DLSS and out["api_key"] == ""
    assert out["key"] == ["synapse", "weight"] and out["n"] == 3
    assert redact_tree(out) == out
    assert redact_tree(("TOKEN=x",)) == (f"TOKEN={REDACTED}",)
    # The fields of slurm-job-<id>.env.json: pwd is the working directory.
    env_file = {"pwd": "sub/dir", "sbatch_argv": ["--export=ALL,HF_TOKEN=hf1", "job.sh"]}
    assert redact_tree(env_file) == {"pwd": "sub/dir",
                                     "sbatch_argv": [f"--export=ALL,HF_TOKEN={REDACTED}", "job.sh"]}


def test_references_are_kept_in_text_but_literal_in_values():
    url = "https://${GITHUB_TOKEN}@github.com/o/r"
    assert redact_text(url) == url
    assert redact_value(url) == f"https://{REDACTED}@github.com/o/r"
    assert redact_environment({"TOKEN": "$ecret"}) == {"TOKEN": REDACTED}
    assert redact_argv(["--token", "$ecret"]) == ["--token", REDACTED]


# -- harmless ------------------------------------------------------------------
HARMLESS_ENV = {
    "PATH": "/usr/local/bin:/usr/bin:/bin", "PWD": "/work/ds", "OLDPWD": "/work",
    "HOME": "/home/u", "USER": "u", "SHELL": "/bin/bash", "LANG": "en_US.UTF-8",
    "TERM": "xterm-256color", "SLURM_JOB_ID": "4711", "SLURM_SUBMIT_DIR": "/work/ds",
    "SLURM_JOB_NODELIST": "node[01-04]", "DISPLAY": "localhost:10.0",
    "SSH_AUTH_SOCK": "/tmp/ssh-XXXX/agent.1", "XAUTHORITY": "/home/u/.Xauthority",
    "KRB5CCNAME": "FILE:/tmp/krb5cc_1000", "MANPATH": "/usr/share/man",
    "PYTHONPATH": "/opt/lib/python", "CLASSPATH": "/opt/java/lib/x.jar",
    "LD_LIBRARY_PATH": "/opt/cuda/lib64", "PASSENGER_APP_ENV": "production",
    "BYPASS_CACHE": "1", "TOKENIZERS_PARALLELISM": "false", "MAX_TOKENS": "512",
    "GIT_AUTHOR_NAME": "Ada", "XDG_SESSION_ID": "3",
    "DBUS_SESSION_BUS_ADDRESS": "unix:path=/run/user/1000/bus",
    "LS_COLORS": "rs=0:di=01;34:ln=01;36:*.tar=01;31", "AWS_SHARED_CREDENTIALS_FILE": "~/.aws/c",
    "SSL_CERT_FILE": "/etc/ssl/cert.pem", "CLIENT_CERT": "/etc/ssl/client.crt",
    "DB_PASSWORD_FILE": "/run/secrets/db", "GPG_PUBLIC_KEY": "ABCDEF0123",
    "DATALAD_SLURMSWEEP_TOKEN": DLSS, "COMMIT": SHA, "RUN_ID": UUID,
    "BLOB": "SGVsbG8gd29ybGQsIHRoaXMgaXMgbm90IGEgc2VjcmV0Lg==",
    "MIRROR": "https://example.org/repo.git", "HOOKS": "https://github.com/pre-commit/pre-commit-hooks",
    "QUERY": "https://example.org/search?q=slurm&page=2&sort=asc",
    "DOTTED": "a.b.c", "VERSIONS": "numpy==1.26.4", "TASK": "task-1234567890abcdefghij",
    "PROSE": "Basic usage: see the Bearer section of the docs",
    "SKLEARN": "sk-learn-benchmark-results-for-all",
}


@pytest.mark.parametrize("name", sorted(HARMLESS_ENV))
def test_harmless_variables_are_kept(name):
    assert redact_environment({name: HARMLESS_ENV[name]}) == {name: HARMLESS_ENV[name]}
    assert redact_value(HARMLESS_ENV[name]) == HARMLESS_ENV[name]


@pytest.mark.parametrize("text", [
    f"sbatch --comment={DLSS} job.sh", f"commit {SHA}", f"uuid {UUID}",
    "TOKEN=$TOKEN ./run", 'curl -H "Authorization: Bearer ${GITHUB_TOKEN}" h',
    "password: <your password here>", "api_key: {{ secrets.API_KEY }}",
    "key: synapse.weight\nvalues: [1, 2]\n", "if a == b: pass", "use_token: true",
    "eyJub3QiOiJhIGp3dCJ9", "https://example.org/a@b", "max_tokens: 256",
    "git clone https://${GITHUB_TOKEN}@github.com/o/r", "git@github.com:o/r.git",
])
def test_harmless_text_is_kept(text):
    assert redact_text(text) == text
    assert secret_findings(text) == []


@pytest.mark.parametrize("name,secret", [
    ("GH_PAT", True), ("MYSQL_PWD", True), ("MYSQLPWD", True), ("db-pass", True),
    ("clientSecret", True), ("X-Amz-Security-Token", True), ("AccountKey", True),
    ("PWD", False), ("pwd", False), ("OLDPWD", False), ("PATH", False), ("BYPASS", False),
    ("PASSENGER", False), ("key", False), ("GIT_AUTHOR_EMAIL", False), ("SLURM_JOB_ID", False),
    ("SSH_AUTH_SOCK", False), ("XAUTHORITY", False), ("KRB5CCNAME", False),
    ("TOKEN_FILE", False), ("DATALAD_SLURMSWEEP_TOKEN", True), ("SSL_CERT", False),
])
def test_secret_names(name, secret):
    assert is_secret_name(name) is secret


def test_findings_name_the_line_and_kind_but_never_the_secret():
    text = (f"#!/bin/bash\n#SBATCH -t 1\ngit clone https://{GHP}@github.com/o/r\n"
            f"export API_TOKEN=Tok9Secret\necho ok\ncurl -H 'Authorization: Bearer $TOKEN'\n"
            f"{PEM}\n")
    found = secret_findings(text)
    assert (3, "a GitHub token") in found and (3, "credentials in a URL") in found
    assert (4, "a value for API_TOKEN") in found and (7, "a private key") in found
    assert {line for line, _ in found} == {3, 4, 7}
    assert not any(s in what for _, what in found for s in (GHP, "Tok9Secret", PEM_BODY))


# -- robustness ------------------------------------------------------------------
_PIECES = list(string.printable) + ["é", "ß", "中", "😀", "\u200b", "İ", "ﬁ", "\u0301",
    "https://", "http://", "redis://", "@", "eyJ", "ghp_", "TOKEN", "password", ": ", "=",
    "--export=", "--token", "-u ", "Bearer ", "Basic ", "<redacted>", "-----BEGIN RSA PRIVATE "
    "KEY-----", "-----END RSA PRIVATE KEY-----", "?sig=", "&", '"', "'", "\n", "AKIA", "sk-",
    "hooks.", "{", "}", "$", DLSS[:9]]
_PLANTS = [
    ("API_TOKEN=PlantA1x", "PlantA1x"), ("redis://:PlantB2y@h", "PlantB2y"),
    (JWT, JWT), (GHP, GHP), ("https://h/x?sig=PlantC3z", "PlantC3z"),
    ("AKIAIOSFODNN7PLANT2X", "IOSFODNN7PLANT2X"), (PEM, PEM_BODY),
    ("https://hooks.slack.com/services/PlantE4", "PlantE4"),
    ("--password=PlantF5w", "PlantF5w"), ("Authorization: Bearer PlantG6v0123", "PlantG6v0123"),
]


def _random_text(rng: random.Random) -> str:
    return "".join(rng.choice(_PIECES) for _ in range(rng.randint(0, 60)))


def test_fuzz_never_raises_is_idempotent_and_leaks_no_planted_secret():
    rng = random.Random(5000)
    for i in range(5000):
        text = _random_text(rng)
        for redact in (redact_value, redact_text):
            once = redact(text)
            assert redact(once) == once, (redact.__name__, text)
        # The cheap pre-checks must never change the outcome of the full scan.
        assert r._redact(text, False) == r._redact(text, False, hints=False), text
        argv = text.split(" ")
        assert redact_argv(redact_argv(argv)) == redact_argv(argv), argv
        secret_findings(text)
        plant, secret = _PLANTS[i % len(_PLANTS)]
        planted = f"{text}\n{plant}\n{_random_text(rng)}"
        for out in (redact_value(planted), redact_text(planted),
                    redact_environment({"V": planted})["V"]):
            assert secret not in out, planted
        assert secret_findings(planted)


def test_an_environment_of_200_variables_is_redacted_fast():
    env = dict(HARMLESS_ENV)
    for i in range(200 - len(env) - 4):
        env[f"SLURM_VAR_{i}"] = f"/some/path/value-{i}/with/more/characters_{i * 7919}"
    env.update({"MIRROR2": "https://u:pw@example.org/r", "API_TOKEN": "x", "J": JWT,
                "G": GHP})
    assert len(env) == 200
    redact_environment(env)
    runs = 50
    start = time.perf_counter()
    for _ in range(runs):
        redact_environment(env)
    per_call = (time.perf_counter() - start) / runs
    assert per_call < 0.020, f"{per_call * 1000:.2f} ms"
