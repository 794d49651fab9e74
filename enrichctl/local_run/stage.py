"""LoadResults' side of the embedded Snowflake: its tables, a `file://` stage, and the
run's objects mirrored from moto's S3 into that stage's folder before each load.

On AWS the stage points at `s3://<bucket>/runs/` and Snowflake reads the bucket itself.
fakesnow cannot read `s3://` offline (DuckDB's httpfs extension is downloaded at run time)
but reads `file://` stages with the same COPY semantics, so locally the stage URL is the
one difference, reported like the runner's other rewrites. The SQL is the production SQL.

Only for the embedded Snowflake: against a real account (`--snowflake-secret-file`) the
user's own setup (`enrichctl snowflake-setup`) is used and nothing is created.
"""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

#: The folder (under the stage folder) standing in for `load.source` locally: the local API
#: writes no files of its own, so that stage stays empty.
SOURCE_FOLDER = "_source"
#: The stage's folder under the output directory (or a temporary directory).
STAGE_FOLDER = "snowflake-stage"


@dataclass(frozen=True)
class LoadTarget:
    """The stage and tables LoadResults uses, from its function's environment."""

    stage: str
    landing_table: str
    results_table: str
    state_table: str
    source_stage: str | None

    @classmethod
    def from_environment(cls, env: dict[str, str]) -> LoadTarget:
        """Read LOAD_* as the Lambda does (defaults from lambdas/load_results/loader.py)."""
        return cls(
            stage=env["LOAD_STAGE"],
            landing_table=env.get("LOAD_LANDING_TABLE", "ENRICH_LANDING"),
            results_table=env.get("LOAD_RESULTS_TABLE", "ENRICH_RESULTS"),
            state_table=env.get("LOAD_STATE_TABLE", "ENRICH_STATE"),
            source_stage=env.get("LOAD_SOURCE_STAGE") or None,
        )


class LocalStage:
    """The embedded Snowflake's load tables and `file://` stage(s) over `folder`."""

    def __init__(self, target: LoadTarget, folder: Path, *, temporary: bool = False) -> None:
        self.target = target
        self.folder = Path(folder).resolve()
        #: The folder's parent is a temporary directory of ours (`remove()` deletes it).
        self.temporary = temporary

    @classmethod
    def for_functions(
        cls, environments: Iterable[dict[str, str]], output_dir: Path | None
    ) -> LocalStage | None:
        """The stage of the LoadResults function among `environments` (None without one),
        over `<output_dir>/snowflake-stage/`, or a temporary directory without one."""
        env = next((e for e in environments if "LOAD_STAGE" in e), None)
        if env is None:
            return None
        target = LoadTarget.from_environment(env)
        if output_dir is not None:
            return cls(target, Path(output_dir) / STAGE_FOLDER)
        base = Path(tempfile.mkdtemp(prefix="enrich-stage-"))
        return cls(target, base / STAGE_FOLDER, temporary=True)

    def remove(self) -> None:
        """Delete the temporary directory (an output directory's folder is kept)."""
        if self.temporary:
            shutil.rmtree(self.folder.parent, ignore_errors=True)

    @property
    def rewrite(self) -> str:
        """The note for the output, beside the EXPRESS rewrite."""
        return (
            f"{self.target.stage}: stage URL file://{self.folder}/ instead of "
            "s3://<bucket>/runs/: fakesnow cannot read s3:// offline (the run's results/ and "
            "failed/ objects are copied there from moto's S3 before LoadResults)"
        )

    def statements(self) -> list[str]:
        """DROP + CREATE of the three tables (each pipeline starts empty, so no earlier
        test's or run's state makes the incremental pull skip IDs; a new table also has no
        COPY load history), then the stage(s)."""
        from enrich_shared.load_sql import create_tables

        t = self.target
        tables = (t.landing_table, t.results_table, t.state_table)
        sql = [f"DROP TABLE IF EXISTS {name}" for name in tables]
        sql += create_tables(*tables)
        sql.append(f"CREATE OR REPLACE STAGE {t.stage} URL='file://{self.folder}/'")
        if t.source_stage:
            source = self.folder / SOURCE_FOLDER
            sql.append(f"CREATE OR REPLACE STAGE {t.source_stage} URL='file://{source}/'")
        return sql

    def prepare(self, secret: dict[str, Any]) -> None:
        """Empty the folder and create the tables and stage(s) in the Snowflake of `secret`
        (the same database and schema the Lambdas connect to)."""
        import snowflake.connector

        from enrich_shared.snowflake_conn import (
            ConnectionSettings,
            SnowflakeCredentials,
            close_quietly,
            connect,
        )

        shutil.rmtree(self.folder, ignore_errors=True)
        self.folder.mkdir(parents=True)
        if self.target.source_stage:
            (self.folder / SOURCE_FOLDER).mkdir()
        creds = SnowflakeCredentials.from_secret(secret, "embedded Snowflake")
        conn = connect(creds, ConnectionSettings("embedded Snowflake"), snowflake.connector.connect)
        try:
            cursor = conn.cursor()
            for sql in self.statements():
                cursor.execute(sql)
        finally:
            close_quietly(conn)

    def mirror(self, s3: Any, bucket: str, run_id: str) -> int:
        """Copy `runs/<run_id>/results/` and `failed/` from S3 into `<folder>/<run_id>/`;
        return how many objects were copied. A file copied for an earlier attempt is written
        again with the same bytes at the same path (as on AWS the object stays in the
        bucket), so COPY's load metadata, keyed by path, skips it."""
        # The run prefixes LoadResults reads through the stage (lambdas/load_results/loader.py).
        from enrich_shared.storage import failed_prefix, results_prefix

        copied = 0
        for prefix in (results_prefix(run_id), failed_prefix(run_id)):
            pages = s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix)
            for page in pages:
                for obj in page.get("Contents", []):
                    path = (self.folder / obj["Key"].removeprefix("runs/")).resolve()
                    if not path.is_relative_to(self.folder):
                        # A key with `..` segments would land outside the stage: never copy it.
                        continue
                    path.parent.mkdir(parents=True, exist_ok=True)
                    path.write_bytes(s3.get_object(Bucket=bucket, Key=obj["Key"])["Body"].read())
                    copied += 1
        return copied
