"""Error types raised by the pipeline steps.

The class name is what the state machine sees as the error name (Lambda's `errorType`),
so `Retry` and `Catch` rules match on these names. Renaming a class is a contract change:
update `stacks/workflow.py` in the same commit.
"""


class PipelineError(Exception):
    """Base class for every error the pipeline raises on purpose."""


class InvalidInputError(PipelineError):
    """The event given to a step is malformed. Not retried: the same input fails again."""


class ConfigurationError(PipelineError):
    """The function's environment or a secret's content is wrong. Not retried."""


class SnowflakeUnavailableError(PipelineError):
    """Snowflake could not be reached or timed out. Retried with backoff."""


class QueryError(PipelineError):
    """The query itself is wrong (SQL error, missing column). Not retried."""


class IdTooLongError(PipelineError):
    """One ID cannot fit in a request URL even alone. Not retried."""


class RetryableEnrichError(PipelineError):
    """The enrichment API answered 429/5xx, timed out or refused. Retried with backoff."""


class RejectedEnrichError(PipelineError):
    """The enrichment API rejected the request (4xx other than 429). Not retried."""


#: Error names the state machine retries with backoff (contract with stacks/workflow.py).
RETRYABLE_ERRORS = ("SnowflakeUnavailableError", "RetryableEnrichError")
#: Error names the state machine must never retry.
NON_RETRYABLE_ERRORS = (
    "InvalidInputError",
    "ConfigurationError",
    "QueryError",
    "IdTooLongError",
    "RejectedEnrichError",
)
