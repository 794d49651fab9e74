"""The context object the Lambda runtime passes a handler, for tests that call one directly.

Powertools' `inject_lambda_context` reads the name, memory, ARN and request ID into every
log line; InvokeEnrich sizes its request timeout from `get_remaining_time_in_millis()`.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass
class LambdaContext:
    """What the handlers read from the runtime's context, with a minute left to run."""

    function_name: str = "test-function"
    memory_limit_in_mb: int = 256
    aws_request_id: str = "req-1"
    remaining_ms: int = 60_000

    @property
    def invoked_function_arn(self) -> str:
        """The function's ARN, as the runtime gives it."""
        return f"arn:aws:lambda:us-east-1:123456789012:function:{self.function_name}"

    def get_remaining_time_in_millis(self) -> int:
        """Milliseconds before the runtime would end the invocation."""
        return self.remaining_ms
