"""The JSON Schema of cdk.json's `pipeline` object, generated from the models (for editors).

`python -m stacks.config.schema` writes schema/pipeline.schema.json; `--check` only says
whether the committed file still matches the models (tests/infra/test_config.py runs it).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

from stacks.config.models import PipelineConfig

SCHEMA_PATH = Path(__file__).resolve().parents[2] / "schema" / "pipeline.schema.json"


def pipeline_schema() -> dict[str, Any]:
    """The schema of the `pipeline` object, every key optional (the app fills in defaults).

    Keys carry no title (pydantic's would read "Missedrunhours"): editors show descriptions.
    """
    schema = PipelineConfig.model_json_schema(by_alias=True, mode="validation")
    _tidy(schema)
    return {"$schema": "https://json-schema.org/draft/2020-12/schema", **schema}


def _tidy(node: Any) -> None:
    if isinstance(node, dict):
        node.pop("required", None)
        for prop in node.get("properties", {}).values():
            prop.pop("title", None)
        for value in node.values():
            _tidy(value)
    elif isinstance(node, list):
        for value in node:
            _tidy(value)


def render() -> str:
    """The schema file's text."""
    return json.dumps(pipeline_schema(), indent=2, ensure_ascii=False) + "\n"


def main(argv: list[str]) -> int:
    """Write the schema file, or with `--check` exit 1 when it differs from the models."""
    text = render()
    if argv == ["--check"]:
        current = SCHEMA_PATH.read_text() if SCHEMA_PATH.exists() else ""
        if current != text:
            print(f"{SCHEMA_PATH} is stale: run `python -m stacks.config.schema`")
            return 1
        return 0
    SCHEMA_PATH.parent.mkdir(exist_ok=True)
    SCHEMA_PATH.write_text(text)
    print(f"wrote {SCHEMA_PATH}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
