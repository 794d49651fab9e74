"""The configuration reference (key, default, values, meaning) as a Markdown table.

It is read off the JSON Schema of the models (`schema.pipeline_schema`): ranges, allowed
values, defaults and meanings are those the validation uses, so the table cannot drift from
the code. `make docs` (tools/docs.py) puts it into docs/configuration.md;
`python -m stacks.config.reference` prints it.
"""

from __future__ import annotations

import json
from typing import Any

from stacks.config.schema import pipeline_schema

HEADER = "| Key | Default | Values | Meaning |\n|---|---|---|---|"


def rows() -> list[tuple[str, str, str, str]]:
    """(key, default, values, meaning) for every key, in the models' order.

    A nested object with a description of its own (the two `retry` objects) is one row,
    as `snowflake.retry.{intervalSeconds,...}`; the others are walked key by key.
    """
    root = pipeline_schema()
    out: list[tuple[str, str, str, str]] = []

    def walk(node: dict[str, Any], prefix: str) -> None:
        for key, prop in node["properties"].items():
            target, meaning = _resolve(prop, root), prop.get("description", "")
            if "properties" in target and not meaning:
                walk(target, f"{prefix}{key}.")
            elif "properties" in target:
                keys, values = ",".join(prop["default"]), prop["default"].values()
                each = ", ".join(
                    f"{k} {_values(_resolve(p, root))}" for k, p in target["properties"].items()
                )
                default = ", ".join(_json(v) for v in values)
                out.append((f"`{prefix}{key}.{{{keys}}}`", f"`{default}`", each, meaning))
            else:
                default = f"`{_json(prop.get('default'))}`"
                out.append((f"`{prefix}{key}`", default, _values(target), meaning))

    walk(root, "")
    return out


def _resolve(prop: dict[str, Any], root: dict[str, Any]) -> dict[str, Any]:
    """The schema of one key: its `$ref` followed, the non-null branch of a nullable."""
    if "$ref" in prop:
        prop = root["$defs"][prop["$ref"].rsplit("/", 1)[1]]
    branches = [b for b in prop.get("anyOf", []) if b.get("type") != "null"]
    return {**prop, **branches[0]} if branches else prop


def _values(prop: dict[str, Any]) -> str:
    """What a key accepts, from its (resolved) schema: a range, the values, or its kind."""
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
    print(render(), end="")
