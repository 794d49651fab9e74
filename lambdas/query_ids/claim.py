"""The run claim: one run ID belongs to one state machine execution.

The claim is `runs/<run_id>/claim.json`, written with `If-None-Match: *` so S3 itself
refuses a second writer (HTTP 412). A second execution for the same run ID (a double
schedule delivery, a manual start reusing an ID) stops with `already_ran`; the same
execution coming back (Lambda retry, redrive) finds its own claim and goes on.
"""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime
from typing import Any

from botocore.exceptions import ClientError

from enrich_shared.storage import claim_key

CLAIMED = "claimed"
ALREADY_RAN = "already_ran"
#: S3 answers 409 while another conditional write of the same key is in flight; retry that.
CONFLICT_RETRIES = 3


def _error_code(exc: ClientError) -> str:
    return str(exc.response.get("Error", {}).get("Code", ""))


def _status(exc: ClientError) -> int:
    return int(exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0))


def claim_run(
    s3: Any, bucket: str, run_id: str, execution_id: str, trigger: str = "manual"
) -> tuple[str, str]:
    """Claim `run_id` for `execution_id`.

    Returns `(status, owner_execution_id)`: `claimed` when this execution owns the run
    (new claim or its own earlier one), `already_ran` when another execution does.
    """
    key = claim_key(run_id)
    body = json.dumps(
        {
            "run_id": run_id,
            "execution_id": execution_id,
            "trigger": trigger,
            "claimed_at": datetime.now(UTC).isoformat(),
        }
    ).encode()
    for attempt in range(CONFLICT_RETRIES):
        try:
            s3.put_object(
                Bucket=bucket,
                Key=key,
                Body=body,
                ContentType="application/json",
                IfNoneMatch="*",
            )
            return CLAIMED, execution_id
        except ClientError as exc:
            if _status(exc) == 412 or _error_code(exc) == "PreconditionFailed":
                break
            if _error_code(exc) == "ConditionalRequestConflict" and attempt + 1 < CONFLICT_RETRIES:
                time.sleep(0.2 * (attempt + 1))
                continue
            raise
    owner = json.loads(s3.get_object(Bucket=bucket, Key=key)["Body"].read()).get("execution_id")
    return (CLAIMED if owner == execution_id else ALREADY_RAN), str(owner)
