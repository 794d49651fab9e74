"""JSON Schemas generated from the models, for editors: the `pipeline` object, and cdk.json.

`python -m stacks.config.schema` writes schema/pipeline.schema.json (the `pipeline` object
alone, for tools that validate it) and schema/cdk.schema.json (the whole cdk.json with that
object at context.pipeline, for an editor's file-to-schema mapping); tests/infra/test_config.py
fails when the committed files differ from the models.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from stacks.config.models import PipelineConfig

SCHEMA_DIR = Path(__file__).resolve().parents[2] / "schema"
DIALECT = "https://json-schema.org/draft/2020-12/schema"


def pipeline_schema() -> dict[str, Any]:
    """The schema of the `pipeline` object, every key optional (the app fills in defaults).

    Keys carry no title (pydantic's would read "Missedrunhours"): editors show descriptions,
    on one line each (the models' docstrings wrap).
    """
    schema = PipelineConfig.model_json_schema(by_alias=True, mode="validation")
    _tidy(schema)
    return {"$schema": DIALECT, **schema}


def cdk_json_schema() -> dict[str, Any]:
    """cdk.json: any keys, with `context.pipeline` checked (one file, no cross-file $ref)."""
    pipeline = pipeline_schema()
    definitions = pipeline.pop("$defs")
    del pipeline["$schema"]
    return {
        "$schema": DIALECT,
        "title": "cdk.json of the IMDB enrichment pipeline",
        "type": "object",
        "properties": {
            "context": {"type": "object", "properties": {"pipeline": pipeline}},
        },
        "$defs": definitions,  # the pipeline's "#/$defs/..." references resolve here
    }


def _tidy(node: Any) -> None:
    if isinstance(node, dict):
        node.pop("required", None)
        if isinstance(node.get("description"), str):
            node["description"] = " ".join(node["description"].split())
        for prop in node.get("properties", {}).values():
            prop.pop("title", None)
        for value in node.values():
            _tidy(value)
    elif isinstance(node, list):
        for value in node:
            _tidy(value)


def rendered() -> dict[Path, str]:
    """Each schema file's path and text."""
    return {
        SCHEMA_DIR / name: json.dumps(schema, indent=2, ensure_ascii=False) + "\n"
        for name, schema in (
            ("pipeline.schema.json", pipeline_schema()),
            ("cdk.schema.json", cdk_json_schema()),
        )
    }


def main() -> None:
    """Write the schema files."""
    SCHEMA_DIR.mkdir(exist_ok=True)
    for path, text in rendered().items():
        path.write_text(text)
        print(f"wrote {path}")


if __name__ == "__main__":
    main()
