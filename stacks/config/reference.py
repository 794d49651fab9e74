"""The configuration reference (key, default, meaning) as a Markdown table, from the models.

`python -m stacks.config.reference` prints it; the docs embed it. Ranges and allowed values
come from the same bounds the validation uses, so the table cannot drift from the code.
"""

from __future__ import annotations

import json
import sys
from typing import Any

from pydantic import BaseModel

from stacks.config.context import DEFAULTS
from stacks.config.models import PipelineConfig
from stacks.config.schema import pipeline_schema

HEADER = "| Key | Default | Values | Meaning |\n|---|---|---|---|"


def rows() -> list[tuple[str, str, str, str]]:
    """(key, default, values, meaning) for every key, in the models' order.

    A nested object with a description of its own (the two `retry` objects) is one row,
    as `snowflake.retry.{intervalSeconds,...}`; the others are walked key by key.
    """
    schema = pipeline_schema()
    out: list[tuple[str, str, str, str]] = []
    _walk(PipelineConfig, DEFAULTS, schema, schema, "", out)
    return out


def _walk(
    model: type[BaseModel],
    defaults: dict[str, Any],
    node: dict[str, Any],
    root: dict[str, Any],
    prefix: str,
    out: list[tuple[str, str, str, str]],
) -> None:
    for name, info in model.model_fields.items():
        key = info.alias or name
        prop = _resolve(node["properties"][key], root)
        nested = isinstance(info.annotation, type) and issubclass(info.annotation, BaseModel)
        if nested and not info.description:
            _walk(info.annotation, defaults[key], prop, root, f"{prefix}{key}.", out)
        elif nested:
            keys = ",".join(defaults[key])
            values = ", ".join(_json(v) for v in defaults[key].values())
            meaning = info.description or ""
            each = ", ".join(
                f"{k} {_values(_resolve(p, root))}" for k, p in prop["properties"].items()
            )
            out.append((f"`{prefix}{key}.{{{keys}}}`", f"`{values}`", each, meaning))
        else:
            default = f"`{_json(defaults[key])}`"
            out.append((f"`{prefix}{key}`", default, _values(prop), info.description or ""))


def _resolve(prop: dict[str, Any], root: dict[str, Any]) -> dict[str, Any]:
    """The schema of one key: its `$ref` followed, the non-null branch of a nullable."""
    if "$ref" in prop:
        prop = root["$defs"][prop["$ref"].rsplit("/", 1)[1]]
    branches = [b for b in prop.get("anyOf", []) if b.get("type") != "null"]
    return {**prop, **branches[0]} if branches else prop


def _values(prop: dict[str, Any]) -> str:
    """What a key accepts, from its schema: a range, the allowed values, or its kind."""
    nullable = any(b.get("type") == "null" for b in prop.get("anyOf", []))
    if "enum" in prop:
        text = ", ".join(f"`{v}`" for v in prop["enum"])
    elif "minimum" in prop and "maximum" in prop:
        low, high = (f"{prop[k]:,}" for k in ("minimum", "maximum"))
        text = f"{low}\N{EN DASH}{high}"
    else:
        text = {"boolean": "`true`, `false`", "array": "list", "string": "text"}[prop["type"]]
    return f"{text} or `null`" if nullable else text


def _json(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value)


def _cell(text: str) -> str:
    return text.replace("|", "\\|")


def render() -> str:
    """The whole Markdown table."""
    lines = [HEADER]
    lines += [f"| {k} | {d} | {v} | {_cell(m)} |" for k, d, v, m in rows()]
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    sys.stdout.write(render())
