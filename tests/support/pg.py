"""A throwaway PostgreSQL cluster on a loopback port, for the tests and the benchmarks.

PostgreSQL refuses to run as root, so as root the cluster belongs to the `postgres` user.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path


class PostgresUnavailable(RuntimeError):
    pass


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _as_owner(args: list[str]) -> list[str]:
    if os.geteuid() == 0:
        return ["runuser", "-u", "postgres", "--", *args]
    return args


def _tool(name: str) -> str:
    found = shutil.which(name)
    if found:
        return found
    for candidate in sorted(Path("/usr/lib/postgresql").glob(f"*/bin/{name}"), reverse=True):
        return str(candidate)
    raise PostgresUnavailable(f"{name} is not installed (apt-get install postgresql)")


@dataclass
class PostgresCluster:
    datadir: Path
    port: int
    user: str = "postgres"

    def url(self, database: str = "postgres") -> str:
        return f"postgresql+psycopg://{self.user}@127.0.0.1:{self.port}/{database}"

    def stop(self) -> None:
        subprocess.run(
            _as_owner([_tool("pg_ctl"), "-D", str(self.datadir), "-m", "immediate", "stop"]),
            capture_output=True,
            check=False,
        )
        shutil.rmtree(self.datadir.parent, ignore_errors=True)


def start_cluster(*, durable: bool = False) -> PostgresCluster:
    """initdb and start a cluster on a free loopback port. `durable` keeps fsync on (for
    benchmarks that should pay what production pays); tests turn it off for speed."""
    initdb, pg_ctl = _tool("initdb"), _tool("pg_ctl")
    root = Path(tempfile.mkdtemp(prefix="creditbot-pg-"))
    datadir = root / "data"
    if os.geteuid() == 0:
        shutil.chown(root, "postgres")
    root.chmod(0o755)
    init = subprocess.run(
        _as_owner(
            [initdb, "-D", str(datadir), "-U", "postgres", "-A", "trust", "-E", "UTF8", "--no-sync"]
        ),
        capture_output=True,
        text=True,
        check=False,
    )
    if init.returncode != 0:
        shutil.rmtree(root, ignore_errors=True)
        raise PostgresUnavailable(f"initdb failed: {init.stderr.strip()[-500:]}")
    # The port is free when chosen but not reserved: another test run (or xdist worker)
    # may take it before the postmaster binds it, so a start that lost that race is
    # retried on another port.
    for attempt in range(5):
        port = _free_port()
        start = _pg_ctl_start(pg_ctl, datadir, root, port, durable)
        if start.returncode == 0:
            break
        log = (root / "log").read_text() if (root / "log").exists() else ""
        if "could not bind" not in log or attempt == 4:
            shutil.rmtree(root, ignore_errors=True)
            raise PostgresUnavailable(f"pg_ctl start failed: {start.stderr.strip()} {log[-500:]}")
    cluster = PostgresCluster(datadir, port)
    _wait_ready(cluster)
    return cluster


def _pg_ctl_start(
    pg_ctl: str, datadir: Path, root: Path, port: int, durable: bool
) -> subprocess.CompletedProcess[str]:
    options = f"-p {port} -k {root} -c listen_addresses=127.0.0.1 -c max_connections=200"
    if not durable:
        options += " -c fsync=off -c synchronous_commit=off -c full_page_writes=off"
    args = [pg_ctl, "-D", str(datadir), "-o", options, "-l", str(root / "log"), "-w", "-t", "60"]
    return subprocess.run(_as_owner([*args, "start"]), capture_output=True, text=True, check=False)


def _wait_ready(cluster: PostgresCluster, timeout: float = 30) -> None:
    import psycopg

    deadline = time.monotonic() + timeout
    while True:
        try:
            psycopg.connect(
                f"host=127.0.0.1 port={cluster.port} user=postgres dbname=postgres"
            ).close()
            return
        except psycopg.OperationalError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)


def create_database(cluster: PostgresCluster, name: str, template: str | None = None) -> str:
    """A new database in the cluster (copied from `template` if given); returns its URL."""
    import psycopg

    with psycopg.connect(
        f"host=127.0.0.1 port={cluster.port} user=postgres dbname=postgres", autocommit=True
    ) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        suffix = f' TEMPLATE "{template}"' if template else ""
        conn.execute(f'CREATE DATABASE "{name}"{suffix}')
    return cluster.url(name)


def drop_database(cluster: PostgresCluster, name: str) -> None:
    """Drop a test's database, closing whatever connections the test left open. Best
    effort: a cluster that is gone already has nothing left to drop."""
    import psycopg

    try:
        with psycopg.connect(
            f"host=127.0.0.1 port={cluster.port} user=postgres dbname=postgres", autocommit=True
        ) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    except psycopg.OperationalError:
        pass
