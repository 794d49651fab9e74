"""How a value is checked, and the message a bad one stops synth with: key, value and fix.

pydantic does the checking: every model is a `Section` (strict, so "10000" is not a number
and 1 is not true; unknown keys refused), its fields carry their bounds or pattern (`whole`,
`text`, ...). `config_error` turns pydantic's errors into one `ConfigError` listing every
problem in the words users see, never pydantic's own text:
`pipeline.enrichment.timeoutSeconds=181 is out of range; fix: use a number from 1 to 180`.
What is wrong comes from `WORDS` (by pydantic's error type), the fix from the field's `Fix`.
A check pydantic cannot express raises `Problem`, with words of its own.
"""

from __future__ import annotations

from dataclasses import KW_ONLY, dataclass
from typing import Annotated, Any

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, ValidationError
from pydantic.alias_generators import to_camel

from stacks.config.limits import CONTEXT_KEY

_SAME = object()  # Problem.value default: the value pydantic saw at the key


class ConfigError(ValueError):
    """The `pipeline` configuration is invalid; the message says what and how to fix it."""


@dataclass(eq=False)  # compared and hashed as the exception it is
class Problem(ValueError):
    """One bad value, raised by a validator: `problem` and `fix` in the user's words.

    `key` names a field below the one being validated (a model validator blaming one of its
    fields, e.g. "maxUrlLength"), with `value` the value to show. `{here}` in `problem` stands
    for the dotted path being validated (a model does not know where it sits). `line` is a
    whole message, used as it is.
    """

    problem: str = ""
    fix: str = ""
    _: KW_ONLY
    key: str | None = None
    value: Any = _SAME
    line: str | None = None


@dataclass(frozen=True)
class Fix:
    """A field's metadata: what the message of a bad value tells the user to do."""

    text: str


class Section(BaseModel):
    """Base of every `pipeline` model: camelCase keys as in cdk.json, nothing unknown, frozen.

    Python code builds them by field name (`RetryConfig(interval_seconds=...)`). Patterns are
    matched with Python's `re` (Rust's regex engine refuses `\\w{2,1224}` as too large).
    """

    model_config = ConfigDict(
        alias_generator=to_camel,
        validate_by_name=True,
        validate_by_alias=True,
        serialize_by_alias=True,
        extra="forbid",
        frozen=True,
        strict=True,
        regex_engine="python-re",
        use_attribute_docstrings=True,
    )


def whole(low: int, high: int, *, nullable: bool = False) -> Any:
    """A whole number from `low` to `high` (or null, when `nullable`)."""
    kind = int | None if nullable else int
    return Annotated[kind, Field(ge=low, le=high), Fix(f"use a number from {low} to {high}")]


def number(low: float, high: float) -> Any:
    """A number (whole or not) from `low` to `high`."""
    return Annotated[float, Field(ge=low, le=high), Fix(f"use a number from {low} to {high}")]


#: JSON true or false.
Flag = Annotated[bool, Fix("use true or false (JSON booleans)")]


def text(fix: str, pattern: str = r"^\s*\S", *, nullable: bool = False) -> Any:
    """A non-empty string matching `pattern` (or null, "" too, when `nullable`)."""
    if nullable:
        blank_is_null = BeforeValidator(lambda value: None if value == "" else value)
        return Annotated[str | None, Field(pattern=pattern), blank_is_null, Fix(fix)]
    return Annotated[str, Field(min_length=1, pattern=pattern), Fix(fix)]


def one_of(values: tuple[Any, ...], problem: str) -> Any:
    """One of `values` (compared as JSON does: true is not 1)."""

    def check(value: Any) -> Any:
        if isinstance(value, bool) or value not in values:
            raise Problem(problem, f"use one of {list(values)}")
        return values[values.index(value)]

    kind = type(values[0])
    return Annotated[kind, Field(json_schema_extra={"enum": list(values)}), BeforeValidator(check)]


#: pydantic's error types in our words ({keys}: the keys the object at the key accepts).
WORDS = {
    "int_type": "is not a whole number",
    "float_type": "is not a number",
    "greater_than_equal": "is out of range",
    "less_than_equal": "is out of range",
    "bool_type": "is not true or false",
    "string_type": "must be a non-empty string",
    "string_too_short": "must be a non-empty string",
    "string_pattern_mismatch": "is malformed",
    "tuple_type": "must be a list",
    "extra_forbidden": "is not a known configuration key",
    "model_type": "must be an object with keys {keys}",
}
#: The fixes that depend on the object, not the field.
OBJECT_FIXES = {
    "extra_forbidden": "remove it or use one of {keys} (check the spelling)",
    "model_type": "see the configuration table in docs/configuration.md",
}


def dotted(loc: tuple[int | str, ...]) -> str:
    """A pydantic location as users write it: ("alarms", "emails", 1) -> alarms.emails[1]."""
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else f".{part}" if out else str(part)
    return out


def _at(model: type[BaseModel], loc: tuple[int | str, ...]) -> tuple[Any, type[BaseModel]]:
    """The field at `loc` (None for an unknown key) and the innermost model on the way."""
    field = None
    for part in (p for p in loc if isinstance(p, str)):  # an item of a list: the list's field
        field = next((f for f in model.model_fields.values() if f.alias == part), None)
        if field is not None and isinstance(field.annotation, type):
            model = field.annotation if issubclass(field.annotation, BaseModel) else model
    return field, model


def message(error: Any, model: type[BaseModel]) -> str:
    """The user's message for one of pydantic's error entries about a `model` object."""
    path, value = dotted(error["loc"]), error["input"]
    problem = error.get("ctx", {}).get("error")
    if isinstance(problem, Problem):
        if problem.line:
            return problem.line
        key = ".".join(p for p in (path, problem.key) if p)
        value = value if problem.value is _SAME else problem.value
        text = problem.problem.replace("{here}", path)
        return f"{CONTEXT_KEY}.{key}={value!r} {text}; fix: {problem.fix}"
    kind = error["type"]
    field, section = _at(model, error["loc"])
    keys = sorted(f.alias for f in section.model_fields.values())
    if kind in OBJECT_FIXES:
        fix = OBJECT_FIXES[kind].format(keys=keys)
    else:
        fix = next((m.text for m in getattr(field, "metadata", ()) if isinstance(m, Fix)), None)
    if kind not in WORDS or fix is None:
        # A check without words of ours (none is known): still the key, value and a fix.
        return (
            f"{CONTEXT_KEY}.{path}={value!r} is invalid ({error['msg']}); fix: see "
            "the configuration reference (`python -m stacks.config.reference`)"
        )
    # A blank string is reported as such, whatever the pattern says.
    blank = kind.startswith("string_") and isinstance(value, str) and not value.strip()
    words = WORDS["string_too_short" if blank else kind].format(keys=keys)
    return f"{CONTEXT_KEY}.{path}={value!r} {words}; fix: {fix}"


def format_errors(errors: list[str]) -> str:
    """One message for every problem found, so one synth shows everything to fix."""
    if len(errors) == 1:
        return f"Invalid pipeline configuration: {errors[0]}"
    lines = "\n".join(f"  - {e}" for e in errors)
    return f"Invalid pipeline configuration ({len(errors)} problems):\n{lines}"


def config_error(exc: ValidationError, model: type[BaseModel]) -> ConfigError:
    """The `ConfigError` for a failed validation of a `model` (the `pipeline` object)."""
    errors = exc.errors(include_url=False)
    return ConfigError(format_errors([message(e, model) for e in errors]))
