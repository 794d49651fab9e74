#!/usr/bin/env python3
"""CDK entry point: `npx cdk synth` / `npx cdk deploy` run this (see cdk.json)."""

import sys

from stacks.config.problems import ConfigError
from stacks.synth import build_app


def main() -> None:
    """Build and synthesize; a bad configuration exits with its one clear message."""
    try:
        app, _ = build_app()
    except ConfigError as exc:
        sys.exit(str(exc))
    app.synth()


if __name__ == "__main__":
    main()
