"""A private FreeRADIUS (Debian ``freeradius``) on 127.0.0.1 for the AAA tests: a copy of
/etc/freeradius/3.0 with one site of ours, users from an rlm_files ``authorize`` text or
from an SQLite database through rlm_sql (``rlm_sql_sqlite``), stopped and removed after."""

from __future__ import annotations

import contextlib
import shutil
import sqlite3
import subprocess
import tempfile
from collections.abc import Iterable
from pathlib import Path

from tests.helpers.net import free_port
from tests.helpers.procs import stop_process, wait_ready

FREERADIUS = shutil.which("freeradius") or shutil.which("radiusd")
RADDB = Path("/etc/freeradius/3.0")
SQLITE_SCHEMA = RADDB / "mods-config" / "sql" / "main" / "sqlite" / "schema.sql"
SECRET = "testing123"

# A subscriber row for the SQL database: NAI, MN-HA SPI, MN-HA key, home address or None
Subscriber = tuple[str, int, str, str | None]


def subscriber_db(path: Path, subscribers: Iterable[Subscriber]) -> int:
    """Create the rlm_sql SQLite schema at ``path`` and store the subscribers: radcheck
    ``Auth-Type := Accept`` (the home agent's SA request carries no credentials),
    radreply ``3GPP2-MN-HA-SPI``, ``3GPP2-MN-HA-Shared-Key`` and ``Framed-IP-Address``.
    Returns the number of subscribers."""
    db = sqlite3.connect(path)
    try:
        db.executescript(SQLITE_SCHEMA.read_text())
        n = 0
        check: list[tuple[str, str, str, str]] = []
        reply: list[tuple[str, str, str, str]] = []
        for nai, spi, key, hoa in subscribers:
            n += 1
            check.append((nai, "Auth-Type", ":=", "Accept"))
            reply.append((nai, "3GPP2-MN-HA-SPI", "=", str(spi)))
            reply.append((nai, "3GPP2-MN-HA-Shared-Key", "=", key))
            if hoa is not None:
                reply.append((nai, "Framed-IP-Address", "=", hoa))
        db.executemany(
            "INSERT INTO radcheck (username, attribute, op, value) VALUES (?, ?, ?, ?)", check
        )
        db.executemany(
            "INSERT INTO radreply (username, attribute, op, value) VALUES (?, ?, ?, ?)", reply
        )
        db.commit()
    finally:
        db.close()
    return n


_SQL_MODULE = """sql {{
    dialect = "sqlite"
    driver = "rlm_sql_sqlite"
    sqlite {{
        filename = "{db}"
        busy_timeout = 2000
    }}
    radius_db = "radius"
    acct_table1 = "radacct"
    acct_table2 = "radacct"
    postauth_table = "radpostauth"
    authcheck_table = "radcheck"
    groupcheck_table = "radgroupcheck"
    authreply_table = "radreply"
    groupreply_table = "radgroupreply"
    usergroup_table = "radusergroup"
    read_groups = no
    delete_stale_sessions = no
    pool {{
        start = 4
        min = 4
        max = 16
        spare = 4
        uses = 0
        retry_delay = 1
        lifetime = 0
        idle_timeout = 0
    }}
    client_table = "nas"
    group_attribute = "SQL-Group"
    $INCLUDE ${{modconfdir}}/${{.:name}}/main/${{dialect}}/queries.conf
}}
"""


class FreeRadius:
    """``users``: an rlm_files ``authorize`` text; ``db``: an SQLite subscriber database
    (:func:`subscriber_db`) read through rlm_sql instead."""

    def __init__(self, users: str = "", db: Path | None = None, *, debug: bool = True) -> None:
        self.dir = Path(tempfile.mkdtemp(prefix="mobileha-radius-", dir="/tmp"))
        self.dir.chmod(0o755)  # the server drops to user freerad
        raddb = self.dir / "raddb"
        subprocess.run(["cp", "-a", str(RADDB), str(raddb)], check=True)
        self.port = free_port("127.0.0.1")
        conf = raddb / "radiusd.conf"
        lines = []
        for line in conf.read_text().splitlines():
            s = line.strip()
            if s.startswith("reject_delay"):
                line = "\treject_delay = 0"
            elif s.startswith("proxy_requests"):
                line = "proxy_requests = no"
            lines.append(line)
        conf.write_text("\n".join(lines) + "\n")
        for f in (raddb / "sites-enabled").iterdir():
            f.unlink()
        # eap needs an Auth-Type EAP section and certificates; we only do CHAP.
        with contextlib.suppress(FileNotFoundError):
            (raddb / "mods-enabled" / "eap").unlink()
        source = "files"
        if db is not None:
            source = "sql"
            (raddb / "mods-enabled" / "sql").unlink(missing_ok=True)
            (raddb / "mods-enabled" / "sql").write_text(_SQL_MODULE.format(db=db))
            subprocess.run(["chown", "freerad:freerad", str(db), str(db.parent)], check=True)
        (raddb / "sites-enabled" / "mobileha").write_text(
            f"""server mobileha {{
listen {{
    type = auth
    ipaddr = 127.0.0.1
    port = {self.port}
}}
authorize {{
    preprocess
    chap
    {source}
    pap
}}
authenticate {{
    Auth-Type PAP {{
        pap
    }}
    Auth-Type CHAP {{
        chap
    }}
}}
post-auth {{
    Post-Auth-Type REJECT {{
        attr_filter.access_reject
    }}
}}
}}
"""
        )
        (raddb / "clients.conf").write_text(
            f"client localhost {{\n  ipaddr = 127.0.0.1\n  secret = {SECRET}\n}}\n"
        )
        (raddb / "mods-config" / "files" / "authorize").write_text(users)
        subprocess.run(["chown", "-R", "freerad:freerad", str(raddb)], check=True)
        self.log = self.dir / "radiusd.log"
        # -X (debug, one thread) for the small tests that read the log; -f (threads) at scale
        args = ["-X"] if debug else ["-f", "-l", str(self.log)]
        self.proc = subprocess.Popen(
            [str(FREERADIUS), *args, "-d", str(raddb)],
            stdout=open(self.log, "ab"),  # noqa: SIM115
            stderr=subprocess.STDOUT,
            cwd=self.dir,
        )
        try:
            wait_ready(
                self.proc,
                lambda: "Ready to process requests" in self.log.read_text(errors="replace"),
                30,
                "freeradius",
                self.log,
            )
        except (RuntimeError, AssertionError):
            self.stop()
            raise

    def stop(self) -> None:
        stop_process(self.proc)
        shutil.rmtree(self.dir, ignore_errors=True)


__all__ = ["FREERADIUS", "RADDB", "SECRET", "FreeRadius", "Subscriber", "subscriber_db"]
