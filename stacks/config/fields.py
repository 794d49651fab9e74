"""Field types of the `pipeline` models: each checks its value and says how to fix it.

Each factory gives an `Annotated` type: the JSON Schema sees the plain type with its bounds
or pattern (for editors), and a before-validator refuses a bad value with a `Problem` worded
as users read it. The check is strict: "10000" is not a number, 1 is not true.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Annotated, Any

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field
from pydantic.alias_generators import to_camel

from stacks.config.problems import Problem


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def whole(low: int, high: int) -> Any:
    """A whole number from `low` to `high`."""

    def check(value: Any) -> int:
        if not _is_int(value):
            raise Problem("is not a whole number", f"use a number from {low} to {high}")
        if not low <= value <= high:
            raise Problem("is out of range", f"use a number from {low} to {high}")
        return value

    return Annotated[int, Field(ge=low, le=high), BeforeValidator(check)]


def optional_whole(low: int, high: int) -> Any:
    """`whole(low, high)`, or null."""
    check = _before(whole(low, high))
    return Annotated[
        Annotated[int, Field(ge=low, le=high)] | None,
        BeforeValidator(lambda v: None if v is None else check(v)),
    ]


def number(low: float, high: float) -> Any:
    """A number (whole or not) from `low` to `high`."""

    def check(value: Any) -> float:
        if not isinstance(value, int | float) or isinstance(value, bool):
            raise Problem("is not a number", f"use a number from {low} to {high}")
        if not low <= value <= high:
            raise Problem("is out of range", f"use a number from {low} to {high}")
        return float(value)

    return Annotated[float, Field(ge=low, le=high), BeforeValidator(check)]


def _flag(value: Any) -> bool:
    if not isinstance(value, bool):
        raise Problem("is not true or false", "use true or false (JSON booleans)")
    return value


#: JSON true or false.
Flag = Annotated[bool, BeforeValidator(_flag)]


def text(fix: str = "set a value", pattern: re.Pattern[str] | None = None) -> Any:
    """A non-empty string, matching `pattern` when given; `fix` says what to write."""

    def check(value: Any) -> str:
        if not isinstance(value, str) or not value.strip():
            raise Problem("must be a non-empty string", fix)
        if pattern is not None and not pattern.match(value):
            raise Problem("is malformed", fix)
        return value

    # The pattern is checked above with Python's `re`; the schema carries it for editors.
    schema = {"pattern": pattern.pattern} if pattern is not None else None
    return Annotated[str, Field(min_length=1, json_schema_extra=schema), BeforeValidator(check)]


def optional_text(fix: str, pattern: re.Pattern[str]) -> Any:
    """`text(fix, pattern)`, or null ("" counts as null)."""
    check = _before(text(fix, pattern))
    schema = {"pattern": pattern.pattern}
    return Annotated[
        Annotated[str, Field(json_schema_extra=schema)] | None,
        BeforeValidator(lambda v: None if v in (None, "") else check(v)),
    ]


def one_of(values: tuple[Any, ...], problem: str) -> Any:
    """One of `values` (compared as JSON does: true is not 1)."""

    def check(value: Any) -> Any:
        if isinstance(value, bool) or value not in values:
            raise Problem(problem, f"use one of {list(values)}")
        return values[values.index(value)]

    kind = type(values[0])
    return Annotated[kind, Field(json_schema_extra={"enum": list(values)}), BeforeValidator(check)]


def _before(annotated: Any) -> Callable[[Any], Any]:
    """The before-validator function inside one of the types above."""
    (validator,) = [m for m in annotated.__metadata__ if isinstance(m, BeforeValidator)]
    return validator.func


class Section(BaseModel):
    """Base of every `pipeline` model: camelCase keys as in cdk.json, nothing unknown, frozen.

    Python code builds them by field name (`RetryConfig(interval_seconds=...)`).
    """

    model_config = ConfigDict(
        alias_generator=to_camel,
        validate_by_name=True,
        validate_by_alias=True,
        serialize_by_alias=True,
        extra="forbid",
        frozen=True,
    )
