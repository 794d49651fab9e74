"""`enrichctl graph`: the state machine as a Mermaid flowchart, drawn from the synthesized
definition (never by hand), and the README block generated from it.

The definition comes from the same template `enrichctl local` runs (`cdk.out`, the synth
cache, or an in-process synth) with its tokens resolved by the local runner's resolver; the
Distributed Map's child states are drawn inside a subgraph.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from enrichctl.local_run.definition import LocalNames, TokenResolver, find_state_machine

README_START = "<!-- graph:start -->"
README_END = "<!-- graph:end -->"
README_SECTION = "## How it works"
#: Retries every Lambda task has (Lambda service hiccups): not worth a label each time.
QUIET_RETRY_PREFIXES = ("Lambda.",)

_COMPARISONS = {
    "StringEquals": "==",
    "NumericEquals": "==",
    "BooleanEquals": "==",
    "TimestampEquals": "==",
    "NumericGreaterThan": ">",
    "NumericGreaterThanEquals": ">=",
    "NumericLessThan": "<",
    "NumericLessThanEquals": "<=",
    "StringMatches": "matches",
}
_TESTS = {
    "IsPresent": "is present",
    "IsString": "is a string",
    "IsNumeric": "is a number",
    "IsBoolean": "is a boolean",
    "IsNull": "is null",
}


def synthesized_definition(template: dict[str, Any] | None = None) -> dict[str, Any]:
    """The state machine definition of the synthesized template, tokens resolved."""
    if template is None:
        from enrichctl.local_run.template import load_template

        template, _source = load_template()
    sm_id = find_state_machine(template)
    resolver = TokenResolver(template, LocalNames())
    raw = template["Resources"][sm_id]["Properties"]["DefinitionString"]
    return json.loads(resolver.resolve(raw))


def _text(value: Any) -> str:
    text = value if isinstance(value, str) else json.dumps(value)
    return text.replace('"', "#quot;")


def condition_text(rule: dict[str, Any]) -> str:
    """A Choice rule in words: `$.dry_run == true or $.batch_count == 0`."""
    if "And" in rule:
        return " and ".join(condition_text(r) for r in rule["And"])
    if "Or" in rule:
        return " or ".join(condition_text(r) for r in rule["Or"])
    if "Not" in rule:
        return f"not ({condition_text(rule['Not'])})"
    variable = str(rule.get("Variable", "?"))
    for key, words in _TESTS.items():
        if key in rule:
            return (
                f"{variable} {words}"
                if rule[key]
                else f"{variable} {words.replace('is', 'is not', 1)}"
            )
    for key, op in _COMPARISONS.items():
        for suffix in ("", "Path"):
            if key + suffix in rule:
                value = rule[key + suffix]
                shown = f"'{value}'" if isinstance(value, str) else json.dumps(value)
                return f"{variable} {op} {shown}"
    return json.dumps({k: v for k, v in rule.items() if k != "Next"})


def _node_id(prefix: str, name: str) -> str:
    return prefix + re.sub(r"[^A-Za-z0-9_]", "_", name)


def _task_label(name: str, state: dict[str, Any]) -> str:
    resource = str(state.get("Resource", ""))
    if ":lambda:invoke" in resource:
        kind = "Lambda"
    elif ":aws-sdk:" in resource:
        kind = resource.split(":aws-sdk:", 1)[1]
    else:
        kind = resource.rsplit(":::", 1)[-1] or "Task"
    retried = []
    for retry in state.get("Retry", []):
        errors = [e for e in retry.get("ErrorEquals", []) if not e.startswith(QUIET_RETRY_PREFIXES)]
        if errors:
            retried.append("/".join(errors) + f" x{retry.get('MaxAttempts', 3)}")
    label = f"{name}<br/><small>{kind}"
    if retried:
        label += " · retry " + ", ".join(retried)
    return label + "</small>"


def _map_label(name: str, state: dict[str, Any]) -> str:
    config = (state.get("ItemProcessor") or {}).get("ProcessorConfig", {})
    mode = "Distributed Map" if config.get("Mode") == "DISTRIBUTED" else "Map"
    parts = [mode]
    reader = state.get("ItemReader", {}).get("Parameters", {})
    if "Key.$" in reader:
        parts.append(f"items from S3 {reader['Key.$']}")
    if config.get("ExecutionType"):
        parts.append(f"{config['ExecutionType']} children")
    if state.get("MaxConcurrency"):
        parts.append(f"max concurrency {state['MaxConcurrency']}")
    return f"{name}: " + ", ".join(parts)


def _lines(states: dict[str, Any], prefix: str, indent: str) -> Iterator[str]:
    ids = {name: _node_id(prefix, name) for name in states}
    for name, state in states.items():
        node = ids[name]
        kind = state.get("Type")
        if kind == "Map":
            processor = state.get("ItemProcessor") or state.get("Iterator") or {}
            yield f'{indent}subgraph {node}["{_text(_map_label(name, state))}"]'
            yield f"{indent}  direction TB"
            yield from _lines(processor.get("States", {}), f"{node}_", indent + "  ")
            yield f"{indent}end"
        elif kind == "Task":
            yield f'{indent}{node}["{_text(_task_label(name, state))}"]'
        elif kind == "Choice":
            yield f'{indent}{node}{{"{_text(name)}"}}'
        elif kind == "Succeed":
            yield f'{indent}{node}(["{_text(name)}"]):::succeed'
        elif kind == "Fail":
            error = state.get("Error")
            label = f"{name}<br/><small>error {error}</small>" if error else name
            yield f'{indent}{node}(["{_text(label)}"]):::fail'
        else:
            yield f'{indent}{node}["{_text(name)}<br/><small>{kind}</small>"]'
    for name, state in states.items():
        node = ids[name]
        for choice in state.get("Choices", []):
            label = _text(condition_text(choice))
            yield f'{indent}{node} -->|"{label}"| {ids[choice["Next"]]}'
        if "Default" in state:
            yield f'{indent}{node} -->|"otherwise"| {ids[state["Default"]]}'
        for catch in state.get("Catch", []):
            label = _text("catch " + ", ".join(catch.get("ErrorEquals", [])))
            yield f'{indent}{node} -.->|"{label}"| {ids[catch["Next"]]}'
        if "Next" in state:
            yield f"{indent}{node} --> {ids[state['Next']]}"


def mermaid(definition: dict[str, Any]) -> str:
    """The definition as a Mermaid flowchart (deterministic: same definition, same text)."""
    lines = ["flowchart TD"]
    lines.append(f"  start((start)) --> {_node_id('', definition['StartAt'])}")
    lines += list(_lines(definition["States"], "", "  "))
    lines.append("  classDef succeed fill:#e6f4ea,stroke:#1e8e3e")
    lines.append("  classDef fail fill:#fce8e6,stroke:#d93025")
    return "\n".join(lines) + "\n"


def readme_block(diagram: str) -> str:
    """What goes between the README's graph markers."""
    return (
        f"{README_START}\n<!-- generated by `enrichctl graph --update-readme`; do not edit -->\n"
        f"```mermaid\n{diagram}```\n{README_END}"
    )


def readme_diagram(text: str) -> str | None:
    """The diagram currently between the README's markers (None: no markers)."""
    start, end = text.find(README_START), text.find(README_END)
    if start < 0 or end < start:
        return None
    match = re.search(r"```mermaid\n(.*?)```", text[start:end], re.DOTALL)
    return match.group(1) if match else ""


def with_diagram(text: str, diagram: str) -> str:
    """README text with the block replaced, or added at the end of "How it works"."""
    block = readme_block(diagram)
    start, end = text.find(README_START), text.find(README_END)
    if start >= 0 and end > start:
        return text[:start] + block + text[end + len(README_END) :]
    section = text.find(README_SECTION)
    if section < 0:
        return text.rstrip("\n") + "\n\n" + block + "\n"
    following = text.find("\n## ", section + len(README_SECTION))
    if following < 0:
        return text.rstrip("\n") + "\n\n" + block + "\n"
    return text[:following].rstrip("\n") + "\n\n" + block + "\n" + text[following:]


def update_readme(path: Path, diagram: str) -> bool:
    """Write the diagram into the README at `path`; True if the file changed."""
    text = path.read_text()
    updated = with_diagram(text, diagram)
    if updated != text:
        path.write_text(updated)
    return updated != text
