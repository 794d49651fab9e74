"""The messages a bad configuration stops synth with: the key, the value and the fix.

Validators raise `Problem` (what is wrong, how to fix it); `config_error` turns pydantic's
`ValidationError` into one `ConfigError` listing every problem, in the words users see:
`pipeline.enrichment.timeoutSeconds=181 is out of range; fix: use a number from 1 to 180`.
Never pydantic's own text, stack trace or documentation URL.
"""

from __future__ import annotations

from typing import Any

from pydantic import ValidationError

from stacks.config.limits import CONTEXT_KEY

_SAME = object()  # Problem.value default: the value pydantic saw at the key


class ConfigError(ValueError):
    """The `pipeline` configuration is invalid; the message says what and how to fix it."""


class Problem(ValueError):
    """One bad value, raised by a validator: `problem` and `fix` in the user's words.

    `key` names a field below the one being validated (a model validator blaming one of its
    fields, e.g. "maxUrlLength"), with `value` the value to show. `{here}` in `problem` stands
    for the dotted path being validated (a model does not know where it sits). `line` is a
    whole message, used as it is.
    """

    def __init__(
        self,
        problem: str = "",
        fix: str = "",
        *,
        key: str | None = None,
        value: Any = _SAME,
        line: str | None = None,
    ) -> None:
        super().__init__(line or f"{problem}; fix: {fix}")
        self.problem, self.fix, self.key, self.value, self.line = problem, fix, key, value, line


def dotted(loc: tuple[int | str, ...]) -> str:
    """A pydantic location as users write it: ("alarms", "emails", 1) -> alarms.emails[1]."""
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else f".{part}" if out else str(part)
    return out


def message(error: Any) -> str:
    """The user's message for one of pydantic's error entries."""
    path = dotted(error["loc"])
    problem = error.get("ctx", {}).get("error")
    if not isinstance(problem, Problem):
        # A check without a message of ours (none is known): still the key, value and a fix.
        detail = str(problem) if problem is not None else error["msg"]
        return (
            f"{CONTEXT_KEY}.{path}={error['input']!r} is invalid ({detail}); fix: see "
            "the configuration reference (`python -m stacks.config.reference`)"
        )
    if problem.line:
        return problem.line
    key = ".".join(p for p in (path, problem.key) if p)
    value = error["input"] if problem.value is _SAME else problem.value
    text = problem.problem.replace("{here}", path)
    return f"{CONTEXT_KEY}.{key}={value!r} {text}; fix: {problem.fix}"


def format_errors(errors: list[str]) -> str:
    """One message for every problem found, so one synth shows everything to fix."""
    if len(errors) == 1:
        return f"Invalid pipeline configuration: {errors[0]}"
    lines = "\n".join(f"  - {e}" for e in errors)
    return f"Invalid pipeline configuration ({len(errors)} problems):\n{lines}"


def config_error(exc: ValidationError) -> ConfigError:
    """The `ConfigError` for a failed validation of the `pipeline` object."""
    return ConfigError(format_errors([message(e) for e in exc.errors(include_url=False)]))
