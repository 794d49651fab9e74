"""Where `enrichctl` finds the rest of the repository: the CDK app and the Lambdas' code.

The console script only puts the `enrichctl` package on `sys.path`; the code it shares with
the pipeline (`lambdas/enrich_shared`: the S3 layout, the run models, the Snowflake SQL) and
the CDK app (`stacks/`) live beside it and are put on the path by `use_repo_code()`.
"""

from __future__ import annotations

import sys
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
LAMBDAS_DIR = REPO_ROOT / "lambdas"


def use_repo_code() -> None:
    """Make `enrich_shared` (and the handlers) and `stacks` importable; idempotent."""
    for path in (str(REPO_ROOT), str(LAMBDAS_DIR)):
        if path not in sys.path:
            sys.path.insert(0, path)
