"""Typed, validated pipeline configuration read from the `pipeline` context object.

Every bad value stops synth with one `ConfigError` whose message names the key, the value
and the fix (all problems found are listed together, so one synth shows everything that
needs fixing). The modules, by job (import from them):

- `context`: `load_config`, reading CDK context over the models' defaults;
- `models`: the `pipeline` object as pydantic models (keys, defaults, meanings, checks);
- `problems`: how a value is checked, and pydantic's errors in the user's words;
- `cron`: Scheduler cron expressions, time zones, daylight-saving gaps;
- `budget`: retry policies and the time budget of one Express child;
- `limits`: AWS's and our fixed limits;
- `schema` and `reference`: the JSON Schemas for editors and the Markdown reference.
"""
