"""The context object the Lambda runtime passes a handler, for tests that call one directly.

The same stand-in `enrichctl local` gives the in-process handlers
(`enrichctl.local_run.moto_hooks.LambdaContext`), so the unit tests and the local runs feed
the handlers one shape: Powertools' `inject_lambda_context` reads the name, memory, ARN and
request ID into every log line; InvokeEnrich sizes its request timeout from
`get_remaining_time_in_millis()`.
"""

from __future__ import annotations

from enrichctl.local_run.moto_hooks import LambdaContext, LocalFunction

#: A function with a minute to run.
TEST_FUNCTION = LocalFunction(
    name="test-function",
    arn="arn:aws:lambda:us-east-1:123456789012:function:test-function",
    handler="test.handler.lambda_handler",
    timeout_s=60,
    memory_mb=256,
)


def lambda_context() -> LambdaContext:
    """A fresh context (its own request ID and a full minute left), as for one invocation."""
    return LambdaContext(TEST_FUNCTION)
