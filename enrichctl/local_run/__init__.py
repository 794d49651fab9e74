"""`enrichctl local`: run the deployed state machine on a laptop (moto + real handlers).

- `template`: the synthesized CloudFormation template (cdk.out, a cache, or a synth).
- `definition`: the synthesized definition with tokens resolved to local names.
- `moto_hooks`: in-process Lambda handlers and recorded retry waits inside moto.
- `moto_setup`: the template's functions, bucket, secrets and state machine in moto.
- `execution`: start one execution and wait for it (stopping it if a thread died).
- `s3_reads`: the run's objects read back (failure record, JSON, an export).
- `history`: the execution history as a states table (shared with `enrichctl show`).
- `report`: a finished run's report and its `--json` summary.
- `pipeline`: `LocalPipeline`, which composes the above (tests use it directly).
- `options`: the flags of `enrichctl local` and their checks.
- `logs`: handler logs to `lambda.log` while a run lasts.
- `stage`: the embedded Snowflake's `file://` stage the results are mirrored into.
- `faults`: the faults the reliability matrix injects.
- `runner`: `run_nights`, what `enrichctl local` does from start to end.
"""
