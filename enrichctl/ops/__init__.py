"""Operate the deployed pipeline: `enrichctl run | status | show | retry | smoke | graph`.

- `aws`: session and clients (--profile/--region/--stack), stack outputs, and the mapping of
  AWS errors to one clear line (`OpsError`).
- `executions`: what the commands know about executions: names, facts for `status`, the
  state timeline for `show`, the failure record, and the retry decision.
- `smoke`: the post-deploy checks of `enrichctl smoke`; `topic_policy` evaluates whether the
  alarm topic's policy lets CloudWatch publish.
- `graph`: the state machine as a Mermaid flowchart, and the README block drawn from it.
- `commands`: the `_cmd`-style entry points `enrichctl.cli` registers, and their output.
"""
