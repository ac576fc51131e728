"""Secrets planted in every form a user could hand us, then looked for
everywhere we write.

Each secret is a distinct random marker inside a realistic shape (a Redis
URL's password, a Sentry DSN's key, a JWT's signature, a GitHub token ...).
They are planted in the submission environment, the sbatch command line,
``-m`` messages of the three writing commands, a sweep's webhook (the
environment, git config and the configuration file), sweep configurations
that must be refused (a secret in a command template or module line), and
a job script (the user's own file: a warning is fine, and the script may be
in history and in the backend's copy of it, nowhere else).

Then every marker is searched for in ``git log --all -p --format=%B``, in
every file of the work tree but the user's own, and in every file under
``.git/slurmsweep`` (store, WAL, journal, local backend state and logs).
"""
from __future__ import annotations

import base64
import json
import random
import string
import time
from dataclasses import dataclass
from pathlib import Path

import yaml

from .sandbox import (
    JOB,
    Outcome,
    datalad,
    example_config,
    free_port,
    git,
    new_dataset,
    remove_dataset,
    write,
)


@dataclass
class Secret:
    form: str  # where it was planted, for the report
    marker: str  # the secret part, searched for verbatim
    user_file: bool = False  # planted in a file the user commits themselves


class Markers:
    def __init__(self, seed: int):
        self.rng = random.Random(seed)
        self.planted: list[Secret] = []

    def word(self, n: int = 24, alphabet: str = string.ascii_letters + string.digits) -> str:
        return "".join(self.rng.choice(alphabet) for _ in range(n))

    def plant(self, form: str, marker: str, user_file: bool = False) -> str:
        self.planted.append(Secret(form, marker, user_file))
        return marker


def _b64(data: dict) -> str:
    return base64.urlsafe_b64encode(json.dumps(data).encode()).decode().rstrip("=")


def environment_secrets(m: Markers, tag: str) -> dict[str, str]:
    """Variables a login node's environment may well hold."""
    alnum = string.ascii_letters + string.digits
    upper = string.ascii_uppercase + string.digits
    sig = m.word(43, alnum + "-_")
    jwt = f"{_b64({'alg': 'HS256', 'typ': 'JWT'})}.{_b64({'sub': m.word(8)})}.{sig}"
    body = m.word(64, alnum + "+/")
    env = {
        "REDIS_URL": f"redis://:{m.plant(f'{tag} env REDIS_URL password', m.word())}"
                     "@cache.example:6379/0",
        "SENTRY_DSN": f"https://{m.plant(f'{tag} env SENTRY_DSN key', m.word(32, '0123456789abcdef'))}"
                      "@o1.ingest.example/1",
        "MYSQL_PWD": m.plant(f"{tag} env MYSQL_PWD", m.word()),
        "GH_PAT": m.plant(f"{tag} env GH_PAT", m.word(30)),
        "CI_JOB_JWT": jwt,
        "DATA_URL": f"https://data.example/file?key={m.plant(f'{tag} env URL ?key=', m.word())}&x=1",
        "DOWNLOAD_URL": f"https://data.example/f?x=1&token={m.plant(f'{tag} env URL ?token=', m.word())}",
        "DATALAD_SLURMSWEEP_TOKEN": m.plant(f"{tag} env DATALAD_SLURMSWEEP_TOKEN", m.word()),
        "AWS_ACCESS_KEY_ID": m.plant(f"{tag} env AWS_ACCESS_KEY_ID", "AKIA" + m.word(16, upper)),
        "AWS_SECRET_ACCESS_KEY": m.plant(f"{tag} env AWS_SECRET_ACCESS_KEY",
                                         m.word(40, alnum + "+/")),
        "INNOCENT_SETTING": m.plant(f"{tag} env GitHub token ghp_ under a harmless name",
                                    "ghp_" + m.word(36)),
        "MATERIAL": "-----BEGIN OPENSSH PRIVATE KEY-----\n"
                    + m.plant(f"{tag} env private key block", body)
                    + "\n-----END OPENSSH PRIVATE KEY-----\n",
        "API_KEY": m.plant(f"{tag} env API_KEY", m.word()),
        "DB_CONNECTION_STRING": f"Server=db;User=u;Password={m.plant(f'{tag} env connection string', m.word())}",
        "NOTIFY_HOOK": "https://hooks.slack.com/services/T0000/B0000/"
                       + m.plant(f"{tag} env Slack webhook URL", m.word()),
        "AUTH_HEADER": "Bearer " + m.plant(f"{tag} env Bearer credential", m.word(32)),
        "MODEL_HUB": m.plant(f"{tag} env Hugging Face token", "hf_" + m.word(34)),
        "LLM": m.plant(f"{tag} env sk- key", "sk-" + m.word(48)),
        "GIT_REMOTE": f"https://user:{m.plant(f'{tag} env URL user:password', m.word())}"
                      "@git.example/repo.git",
    }
    m.plant(f"{tag} env CI_JOB_JWT signature", sig)
    return env


def secrets_trial(workdir: Path, backend: str = "local", seed: int = 8) -> Outcome:
    start = time.monotonic()
    outcome = Outcome("secrets", f"every form ({backend})")
    outcome.count("trials")
    m = Markers(seed + (1 if backend == "slurm" else 0))
    script_secret = m.plant("job script line (the user's file)", m.word(), user_file=True)
    ds = new_dataset(workdir / f"secrets-{backend}", model=True, backend=backend, files={
        "job.sh": JOB,
        "secret.sh": JOB + f"export API_TOKEN={script_secret}\n"})
    setup_head = git(ds, "rev-parse", "HEAD").strip()
    user_files = {"job.sh", "secret.sh"}
    steps = []  # (what, call) of every command, to report failures

    def run(what: str, *args: str, env: dict[str, str] | None = None, ok: bool = True):
        call = datalad(ds, *args, env=env, timeout=600)
        steps.append((what, call))
        if call.crash:
            outcome.fail(f"{what} crashed: {call.crash}")
        elif ok and call.rc != 0:
            outcome.fail(f"{what} failed (exit {call.rc}): {call.said()}")
        return call

    try:
        env = environment_secrets(m, "schedule")
        # The local backend takes only --export=ALL: the form is Slurm's.
        export = [f"--export=ALL,TOKEN={m.plant('sbatch --export=ALL,TOKEN=', m.word())}"] \
            if backend == "slurm" else []
        comment = m.plant("sbatch --comment holding a GitHub token", "ghp_" + m.word(36))
        arg_token = m.plant("script argument after --token", m.word())
        arg_assign = m.plant("script argument API_KEY=...", m.word())
        arg_url = m.plant("script argument URL ?token=", m.word())
        msg = m.plant("slurm-schedule -m TOKEN=...", m.word())
        run("slurm-schedule with secrets in its environment, command line and message",
            "slurm-schedule", "-o", "out/a", "-m", f"deploy with TOKEN={msg}",
            "sbatch", *export, f"--comment={comment}",
            "job.sh", "out/a", "--token", arg_token, f"API_KEY={arg_assign}",
            f"https://data.example/x?token={arg_url}", env=env)
        warned = run("slurm-schedule of a script holding a secret",
                     "slurm-schedule", "-o", "out/b", "sbatch", "secret.sh", "out/b")
        if "secret.sh" in warned.stderr:
            outcome.count("script secrets warned about")
        url_msg = m.plant("slurm-finish -m URL ?token=", m.word())
        ghp_msg = m.plant("slurm-finish -m GitHub token", "ghp_" + m.word(36))
        run("slurm-finish --wait -m with secrets", "slurm-finish", "--wait", "--wait-timeout",
            "300", "-m", f"see https://h.example/?token={url_msg} and {ghp_msg}")
        # Replay the script job (its command holds no secret) with a secret message.
        records = git(ds, "log", "--format=%H %s", "HEAD").splitlines()
        script_record = next((line.split()[0] for line in records if "RUN" in line
                              and _record_of(ds, line.split()[0], "secret.sh")), None)
        if script_record:
            password = m.plant("slurm-reschedule -m password=...", m.word())
            run("slurm-reschedule -m with a secret", "slurm-reschedule", "-m",
                f"rerun, password={password}", script_record)
            run("slurm-finish --wait", "slurm-finish", "--wait", "--wait-timeout", "300")
        else:
            outcome.fail("no record of the secret.sh job to replay")
        # Sweeps: the webhook in the environment, in git config and in the file.
        port = free_port()
        hook_env = m.plant("sweep webhook URL (environment)", m.word())
        hook_file = m.plant("sweep webhook URL (simulation.webhook_url)", m.word(),
                            user_file=True)
        sweep_env = environment_secrets(m, "sweep")
        sweep_env["DATALAD_SLURMSWEEP_WEBHOOK_URL"] = f"http://127.0.0.1:{port}/hooks/{hook_env}"
        cfg = example_config()
        cfg["simulation"].update(output_name="../Run-Storage/secret-a",
                                 webhook_url=f"http://127.0.0.1:{port}/hooks/{hook_file}")
        write(ds / "model/secret-a.yaml", yaml.safe_dump(cfg))
        run("slurm-sweep --wait with secrets in its environment and webhook",
            "slurm-sweep", "--backend", backend, "--wait", "--wait-timeout", "300",
            "model/secret-a.yaml", env=sweep_env)
        hook_git = m.plant("sweep webhook URL (git config)", m.word())
        git(ds, "config", "datalad.slurmsweep.webhook-url",
            f"http://127.0.0.1:{port}/hooks/{hook_git}")
        cfg["simulation"].update(output_name="../Run-Storage/secret-b")
        cfg["simulation"].pop("webhook_url")
        write(ds / "model/secret-b.yaml", yaml.safe_dump(cfg))
        run("slurm-sweep --wait with the webhook in git config", "slurm-sweep", "--backend",
            backend, "--wait", "--wait-timeout", "300", "model/secret-b.yaml")
        git(ds, "config", "--unset", "datalad.slurmsweep.webhook-url")
        # Secrets in what the sweep would write into every script: refused.
        for name, change in (
                ("command", lambda c, s: c["simulation_cases"]["baseline"].update(
                    command=f"python run_network.py {{config_file}} --token ghp_{s}")),
                ("module", lambda c, s: c["module_commands"]["local"].append(
                    f"export API_TOKEN={s}"))):
            secret = m.plant(f"sweep {name} template (must be refused)", m.word(36),
                             user_file=True)
            bad = example_config()
            bad["simulation"]["output_name"] = f"../Run-Storage/secret-{name}"
            change(bad, secret)
            write(ds / f"model/secret-{name}.yaml", yaml.safe_dump(bad))
            for check in (["--check"], []):
                call = run(f"slurm-sweep {' '.join(check)} with a secret in the {name}",
                           "slurm-sweep", "--backend", backend, *check,
                           f"model/secret-{name}.yaml", ok=False)
                if call.rc != 0 and call.failures:
                    outcome.count("secret templates refused")
                else:
                    outcome.fail(f"a sweep with a secret in its {name} was not refused "
                                 f"({' '.join(check) or 'submitting'}): {call.said()}")
        user_files |= {f"model/secret-{n}.yaml" for n in ("a", "b", "command", "module")}
        _search(ds, m.planted, user_files, setup_head, outcome)
    except Exception as exc:  # noqa: BLE001  (a broken harness is reported, not hidden)
        outcome.fail(f"the trial itself failed: {type(exc).__name__}: {exc}")
    finally:
        remove_dataset(ds)
    outcome.count("secrets tried", len(m.planted))
    outcome.seconds = time.monotonic() - start
    return outcome


def _record_of(ds: Path, sha: str, script: str) -> bool:
    return script in git(ds, "log", "-1", "--format=%B", sha)


def _search(ds: Path, planted: list[Secret], user_files: set[str], setup_head: str,
            outcome: Outcome) -> None:
    history = git(ds, "log", "--all", "-p", "--format=%B")
    ours_history = git(ds, "log", "--all", "-p", "--format=%B", f"^{setup_head}")
    places: list[tuple[str, bytes, bool]] = []  # (where, content, the user's own copy)
    for path in sorted(ds.rglob("*")):
        rel = path.relative_to(ds).as_posix()
        if rel.startswith(".git/") and not rel.startswith(".git/slurmsweep/"):
            continue
        if rel == ".git" or not path.is_file():
            continue
        try:
            data = path.read_bytes()
        except OSError:
            continue
        # The local backend's copy of a batch script is gone once the job
        # ended (a --wrap command is the script): no exemption for it.
        own = rel in user_files
        places.append((rel, data, own))
    for secret in planted:
        found = []
        text = ours_history if secret.user_file else history
        if secret.marker in text:
            found.append("git log --all -p" + (" (our commits)" if secret.user_file else ""))
        needle = secret.marker.encode()
        found += [rel for rel, data, own in places
                  if needle in data and not (own and secret.user_file)
                  and rel not in user_files]
        if found:
            outcome.count("leaked")
            outcome.fail(f"secret leaked ({secret.form}): found in {found[:6]}")
