"""An embedded Snowflake for tests and `enrichctl local`: fakesnow's server as a subprocess.

fakesnow cannot be imported beside snowflake-connector-python 5.x, so it runs from its own
virtualenv (`.venv-fakesnow`, or the python named by FAKESNOW_PYTHON) through
`fakesnow_server.py`, and we talk to it over a socket with the real 5.x connector, exactly
as the Lambda talks to Snowflake.

    with EmbeddedSnowflake() as snow:
        snow.seed_sample()                      # enrichctl/data/eidr_sample.csv
        snow.seed_synthetic(1_000_000)          # generated inside the server, ~1 s
        secret = snow.secret()                  # JSON for the Snowflake secret
"""

from __future__ import annotations

import csv
import os
import re
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterable, Sequence
from pathlib import Path
from types import TracebackType
from typing import Any

import snowflake.connector

PACKAGE_DIR = Path(__file__).resolve().parent
REPO_ROOT = PACKAGE_DIR.parent
LAUNCHER = PACKAGE_DIR / "fakesnow_server.py"
SAMPLE_CSV = PACKAGE_DIR / "data" / "eidr_sample.csv"

#: The connector's Rust core probes cloud metadata endpoints (EC2 IMDS, GCE, Azure) for
#: telemetry and region lookup. A local run talks to 127.0.0.1 only, so switch them off.
LOOPBACK_ONLY_ENV = {
    "SNOWFLAKE_DISABLE_PLATFORM_DETECTION": "true",
    "AWS_EC2_METADATA_DISABLED": "true",
}


DATABASE = "EIDR"
SCHEMA = "PUBLIC"
TABLE = "ORGS_IMDB_FILTERED"
COLUMNS = ("ORG_ID", "CREATIVEWORKID", "IMDB_VALUE")
#: Rows per multi-row INSERT when seeding from Python values (one statement each).
INSERT_CHUNK_ROWS = 500

_IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_$]*")


def fakesnow_python() -> Path:
    """The python of the fakesnow environment (FAKESNOW_PYTHON overrides the default)."""
    return Path(
        os.environ.get("FAKESNOW_PYTHON") or REPO_ROOT / ".venv-fakesnow" / "bin" / "python"
    )


def _ident(name: str) -> str:
    # Table names go into SQL text (identifiers cannot be bound), so allow plain ones only.
    if not _IDENTIFIER.fullmatch(name):
        raise ValueError(f"{name!r} is not a plain SQL identifier")
    return name


class EmbeddedSnowflakeError(RuntimeError):
    """The embedded Snowflake could not be started."""


class EmbeddedSnowflake:
    """fakesnow's Snowflake server on 127.0.0.1, on a free port, for as long as it is open."""

    def __init__(self, python: str | Path | None = None, startup_timeout_s: float = 60.0) -> None:
        self.python = Path(python) if python else fakesnow_python()
        self.startup_timeout_s = startup_timeout_s
        self.host = "127.0.0.1"
        self.port: int | None = None
        self._process: subprocess.Popen[bytes] | None = None
        self._log: Any = None

    # -- lifecycle ---------------------------------------------------------------------------
    def start(self) -> EmbeddedSnowflake:
        """Start the server and wait until it accepts connections."""
        os.environ.update(LOOPBACK_ONLY_ENV)
        if not self.python.exists():
            raise EmbeddedSnowflakeError(
                f"fakesnow's python {self.python} does not exist: run `make setup` "
                "(creates .venv-fakesnow) or set FAKESNOW_PYTHON"
            )
        # Output goes to a file, not a pipe: nobody reads a pipe once started, and a full
        # pipe would block the server.
        self._log = tempfile.NamedTemporaryFile(prefix="fakesnow-", suffix=".log", delete=False)  # noqa: SIM115
        self._process = subprocess.Popen(
            [str(self.python), str(LAUNCHER), self.host],
            stdout=self._log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + self.startup_timeout_s
        while time.monotonic() < deadline:
            if self._process.poll() is not None:
                raise EmbeddedSnowflakeError(
                    f"fakesnow server exited with code {self._process.returncode}:\n"
                    + self.log_tail()
                )
            if self.port is None:
                match = re.search(r"FAKESNOW_PORT=(\d+)", self.log_text())
                self.port = int(match.group(1)) if match else None
            if self.port is not None and self._accepts_connections():
                return self
            time.sleep(0.05)
        self.stop()
        raise EmbeddedSnowflakeError(
            f"fakesnow server did not start within {self.startup_timeout_s:.0f} s:\n"
            + self.log_tail()
        )

    @property
    def pid(self) -> int | None:
        """The server process's ID while it runs (the bench reads its memory)."""
        return self._process.pid if self._process is not None else None

    def _accepts_connections(self) -> bool:
        try:
            with socket.create_connection((self.host, self.port), timeout=0.5):  # type: ignore[arg-type]
                return True
        except OSError:
            return False

    def stop(self) -> None:
        """Stop the server (SIGTERM, then SIGKILL after 5 s) and remove its log."""
        if self._process is not None and self._process.poll() is None:
            self._process.terminate()
            try:
                self._process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self._process.kill()
                self._process.wait(timeout=10)
        self._process = None
        if self._log is not None:
            self._log.close()
            Path(self._log.name).unlink(missing_ok=True)
            self._log = None

    def __enter__(self) -> EmbeddedSnowflake:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def log_text(self) -> str:
        """Everything the server printed so far."""
        if self._log is None:
            return ""
        return Path(self._log.name).read_text(errors="replace")

    def log_tail(self, lines: int = 30) -> str:
        """The server's last output lines, for error messages."""
        return "\n".join(self.log_text().splitlines()[-lines:])

    # -- connecting --------------------------------------------------------------------------
    def secret(self, **overrides: Any) -> dict[str, Any]:
        """The Snowflake secret JSON that points at this server (the fields
        `enrich_shared.snowflake_conn.SnowflakeCredentials.from_secret` reads)."""
        if self.port is None:
            raise EmbeddedSnowflakeError("the embedded Snowflake is not started")
        value: dict[str, Any] = {
            "account": "fakesnow",
            "user": "fake",
            "password": "snow",
            "warehouse": "LOCAL_WH",
            "database": DATABASE,
            "schema": SCHEMA,
            "role": "LOCAL_ROLE",
            "host": self.host,
            "port": self.port,
            "protocol": "http",
        }
        value.update(overrides)
        return value

    def connect(self) -> Any:
        """A real snowflake-connector-python connection to this server (qmark bindings)."""
        secret = self.secret()
        return snowflake.connector.connect(
            **{k: secret[k] for k in ("account", "user", "password", "host", "port", "protocol")},
            paramstyle="qmark",
            login_timeout=30,
            enable_server_session_keep_alive_auto_detection=False,
        )

    def execute(self, sql: str, params: Sequence[Any] | None = None) -> list[tuple[Any, ...]]:
        """Run one statement on a fresh connection; return its rows (if any)."""
        with self.connect() as conn:
            cursor = conn.cursor()
            cursor.execute(sql, params)
            return cursor.fetchall() if cursor.description else []

    # -- seeding -----------------------------------------------------------------------------
    def create_table(self, table: str = TABLE) -> str:
        """(Re)create `EIDR.PUBLIC.<table>` with the seed's three VARCHAR columns; its name."""
        name = f"{DATABASE}.{SCHEMA}.{_ident(table)}"
        with self.connect() as conn:
            cursor = conn.cursor()
            cursor.execute(f"CREATE DATABASE IF NOT EXISTS {DATABASE}")
            cursor.execute(f"CREATE SCHEMA IF NOT EXISTS {DATABASE}.{SCHEMA}")
            cursor.execute(
                f"CREATE OR REPLACE TABLE {name} "
                "(ORG_ID VARCHAR, CREATIVEWORKID VARCHAR, IMDB_VALUE VARCHAR)"
            )
        return name

    def seed_rows(self, rows: Iterable[Sequence[Any]], table: str = TABLE) -> int:
        """Replace the table's content with `rows` (3 values each); return the row count.

        Multi-row INSERTs with bound values: fakesnow runs an `executemany` row by row
        (~5 ms a row), one statement of 500 rows costs about as much as one row.
        """
        name = self.create_table(table)
        count = 0
        with self.connect() as conn:
            cursor = conn.cursor()
            chunk: list[Sequence[Any]] = []
            for row in rows:
                chunk.append(row)
                if len(chunk) == INSERT_CHUNK_ROWS:
                    count += self._insert(cursor, name, chunk)
                    chunk = []
            if chunk:
                count += self._insert(cursor, name, chunk)
        return count

    @staticmethod
    def _insert(cursor: Any, name: str, rows: list[Sequence[Any]]) -> int:
        placeholders = ", ".join(["(?, ?, ?)"] * len(rows))
        params = [value for row in rows for value in row]
        cursor.execute(f"INSERT INTO {name} VALUES {placeholders}", params)  # noqa: S608
        return len(rows)

    def seed_sample(self, path: Path = SAMPLE_CSV, table: str = TABLE) -> int:
        """Load the shipped EIDR sample (header ORG_ID,CREATIVEWORKID,IMDB_VALUE; empty = NULL)."""
        with path.open(newline="") as handle:
            reader = csv.DictReader(handle)
            rows = [
                tuple(None if row[col] == "" else row[col] for col in COLUMNS) for row in reader
            ]
        return self.seed_rows(rows, table)

    def seed_synthetic(self, rows: int, table: str = TABLE) -> int:
        """Replace the table's content with `rows` generated rows, inside the server.

        Deterministic: row n (1-based) has IMDB_VALUE `tt` + n as 8 digits, except every
        101st row NULL, every 103rd a hostile `tt<n>&ids=x`, every 53rd a duplicate of the
        row before. ~1 s per million rows, since no row crosses the socket.
        """
        if rows < 0:
            raise ValueError("rows must be zero or more")
        name = self.create_table(table)
        if rows == 0:
            return 0
        self.execute(
            f"""INSERT INTO {name}
            SELECT '10.5237/' || UPPER(SUBSTR(MD5(TO_VARCHAR(MOD(n, 997))), 1, 4)) || '-'
                       || UPPER(SUBSTR(MD5(TO_VARCHAR(MOD(n, 997))), 5, 4)),
                   '10.5240/' || UPPER(SUBSTR(MD5(TO_VARCHAR(n)), 1, 4)) || '-'
                       || UPPER(SUBSTR(MD5(TO_VARCHAR(n)), 5, 4)) || '-'
                       || UPPER(SUBSTR(MD5(TO_VARCHAR(n)), 9, 4)) || '-'
                       || UPPER(SUBSTR(MD5(TO_VARCHAR(n)), 13, 4)) || '-'
                       || UPPER(SUBSTR(MD5(TO_VARCHAR(n)), 17, 4)) || '-'
                       || UPPER(SUBSTR(MD5(TO_VARCHAR(n)), 21, 1)),
                   CASE WHEN MOD(n, 101) = 0 THEN NULL
                        WHEN MOD(n, 103) = 0 THEN 'tt' || TO_VARCHAR(n) || '&ids=x'
                        WHEN MOD(n, 53) = 0 THEN 'tt' || LPAD(TO_VARCHAR(n - 1), 8, '0')
                        ELSE 'tt' || LPAD(TO_VARCHAR(n), 8, '0') END
            FROM (SELECT SEQ4() + 1 AS n FROM TABLE(GENERATOR(ROWCOUNT => ?)))""",  # noqa: S608
            [rows],
        )
        return rows


def main(argv: Sequence[str] | None = None) -> int:
    """`python -m enrichctl.embedded_snowflake [ROWS]`: start, seed, print the secret, serve."""
    import json

    args = list(sys.argv[1:] if argv is None else argv)
    with EmbeddedSnowflake() as snow:
        if args:
            started = time.perf_counter()
            snow.seed_synthetic(int(args[0]))
            print(f"seeded {int(args[0]):,} rows in {time.perf_counter() - started:.2f} s")
        else:
            print(f"seeded {snow.seed_sample()} sample rows")
        print(json.dumps(snow.secret()))
        try:
            while True:
                time.sleep(3600)
        except KeyboardInterrupt:
            return 0


if __name__ == "__main__":
    raise SystemExit(main())
