"""The README works as written for a new operator: in a fresh clone, `make run` (in the
background, until /healthz answers), then the README's activation line and every
`creditbot ...` line of its shell blocks, verbatim and in order.

Slow (a fresh venv is installed), so marked `slow`; `make test` runs it all the same.
Lines that need what a fresh instance has not configured yet (Slack, Stripe) are run too,
and must fail the way the README says they do (exit 1, saying why); the two that serve
until stopped (`make run` already serves) are run with `--help`.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import urllib.request
from pathlib import Path

import pytest

from tests.support.api_server import free_port
from tests.support.waiting import wait_until

pytestmark = [pytest.mark.slow, pytest.mark.timeout(1200)]

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
ACTIVATE = "source .venv/bin/activate"
#: Lines that run until stopped.
LONG_RUNNING = ("creditbot serve", "creditbot scheduler")
#: Lines that exit 1 on a fresh instance, as the README says: nothing configured yet
#: (`webhooks add` needs CREDITBOT_ENCRYPTION_KEYS, which a fresh instance has not set).
FAILS_UNCONFIGURED = (
    "creditbot doctor",
    "creditbot stripe reconcile",
    "creditbot stripe add-card",
    "creditbot slack socket",
    "creditbot slack rotate-key",
    "creditbot webhooks add",
)
#: How long installing a fresh venv and starting may take on a busy 2-core machine.
START_TIMEOUT = 600


def readme_lines() -> list[str]:
    """The activation line and every `creditbot` line of the README's shell blocks, with
    continued lines joined, in order."""
    lines = []
    for block in re.findall(r"```sh\n(.*?)```", README.read_text(), flags=re.S):
        joined = block.replace("\\\n", " ")
        lines += [
            line.strip()
            for line in joined.splitlines()
            if line.strip().startswith(("creditbot ", ACTIVATE))
        ]
    return lines


def fresh_clone(dest: Path) -> Path:
    """A clone of this working tree: its commit, plus uncommitted changes to tracked files."""
    snapshot = subprocess.run(["git", "stash", "create"], cwd=ROOT, capture_output=True,
                              text=True, check=True).stdout.strip()  # fmt: skip
    head = snapshot or "HEAD"
    commit = subprocess.run(["git", "rev-parse", head], cwd=ROOT, capture_output=True,
                            text=True, check=True).stdout.strip()  # fmt: skip
    subprocess.run(["git", "clone", "--quiet", "--shared", "--no-checkout", str(ROOT), str(dest)],
                   check=True)  # fmt: skip
    subprocess.run(["git", "checkout", "--quiet", "--detach", commit], cwd=dest, check=True)
    return dest


def operator_env(home: Path, port: int) -> dict[str, str]:
    """A shell as a new operator has it: no creditbot on the PATH, nothing configured."""
    ours = str(Path(sys.executable).parent)
    path = [p for p in os.environ.get("PATH", "").split(os.pathsep) if p and p != ours]
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("DATABASE_URL", "SLACK_", "STRIPE_", "CREDITBOT_", "PUBLIC_URL"))
        and k not in ("VIRTUAL_ENV", "RUN_SCHEDULER", "PYTHONPATH", "PORT")
    }
    env.update(PATH=os.pathsep.join(path), CREDITBOT_HOME=str(home), PORT=str(port),
               PIP_DISABLE_PIP_VERSION_CHECK="1")  # fmt: skip
    return env


def _get(url: str) -> tuple[int, bytes]:
    with urllib.request.urlopen(url, timeout=5) as answer:
        return answer.status, answer.read()


def test_readme_commands_work_as_written_in_a_fresh_clone(tmp_path):
    lines = readme_lines()
    assert ACTIVATE in lines and lines.index(ACTIVATE) < min(
        i for i, line in enumerate(lines) if line.startswith("creditbot ")
    ), "the README puts creditbot on the PATH before its first command"
    clone = fresh_clone(tmp_path / "creditbot")
    port = free_port()
    env = operator_env(tmp_path / "data", port)
    log = (tmp_path / "make-run.log").open("wb")
    serving = subprocess.Popen(["make", "run"], cwd=clone, env=env, stdout=log,
                               stderr=subprocess.STDOUT, start_new_session=True)  # fmt: skip
    try:

        def answers() -> bool:
            assert serving.poll() is None, (tmp_path / "make-run.log").read_text()[-3000:]
            try:
                return _get(f"http://127.0.0.1:{port}/healthz")[0] == 200
            except OSError:
                return False

        wait_until(answers, timeout=START_TIMEOUT)
        # `make run` installed what serving needs, and none of the test tools.
        for module in ("pytest", "hypothesis", "httpx", "aiohttp", "localstripe"):
            found = subprocess.run([clone / ".venv/bin/python", "-c", f"import {module}"],
                                   capture_output=True, check=False)  # fmt: skip
            assert found.returncode != 0, f"{module} is installed by make run"
        status, page = _get(f"http://127.0.0.1:{port}/docs")
        assert status == 200 and b"/static-offline-docs/swagger-ui-bundle.js" in page

        script = []
        for n, line in enumerate(lines):
            command = line.split(" #", 1)[0].rstrip()
            run = f"{command} --help" if command.startswith(LONG_RUNNING) else line
            script.append(f'{{ {run}\n}} 2>&1; echo "@@ {n} $?"')
        shell = subprocess.Popen(["bash", "-c", "\n".join(script)], cwd=clone, env=env,
                                 stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                 start_new_session=True)  # fmt: skip
        try:
            stdout, stderr = shell.communicate(timeout=600)
        finally:
            _stop(shell)
        outputs = re.split(r"^@@ (\d+) (\d+)$", stdout, flags=re.M)
        codes = {int(n): int(code) for n, code in zip(outputs[1::3], outputs[2::3], strict=True)}
        said = dict(zip(range(len(lines)), outputs[0::3], strict=False))
        assert sorted(codes) == list(range(len(lines))), stdout[-3000:] + stderr
        for n, line in enumerate(lines):
            expected = 1 if line.startswith(FAILS_UNCONFIGURED) else 0
            assert codes[n] == expected, f"{line!r} exited {codes[n]}:\n{said[n]}"
            assert "Traceback" not in said[n], f"{line!r}:\n{said[n]}"

        def output_of(command: str) -> str:
            return said[next(n for n, line in enumerate(lines) if line.startswith(command))]

        assert "database at sqlite:///" in output_of("creditbot db upgrade")
        assert "Stripe is not configured" in output_of("creditbot stripe reconcile")
        shown = json.loads(output_of("creditbot accounts show Acme --json"))
        assert shown["timezone"] == "Europe/Madrid" and shown["slack_team_id"] == "T123"
        assert "support-bot" in output_of("creditbot agents list --account Acme")
        statement = (clone / "statement.csv").read_text().splitlines()
        assert statement[0].startswith("entry,time,kind") and len(statement) > 2
        assert (tmp_path / "data" / "creditbot.db").exists()
        assert not (clone / "creditbot.db").exists()
    finally:
        _stop(serving)
        log.close()


def _stop(process: subprocess.Popen) -> None:
    """End `process` and everything it started (its own process group)."""
    try:
        os.killpg(process.pid, signal.SIGTERM)
        process.wait(timeout=30)
    except ProcessLookupError:
        pass
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=10)
