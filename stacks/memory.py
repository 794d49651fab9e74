"""Each function's memory in MB: the one place it is set.

No CDK import here, so the cost model (`enrichctl cost`, enrichctl/cost.py) prices the
sizes the stack deploys (stacks/functions.py) without loading aws_cdk.

Each size is the measured need (import + one invocation's work, the larger of a 100,000- and
a 1,000,000-ID night) + 50 %, rounded up to 64 MB, as `python -m enrichctl.bench.memory_sizes`
writes it to bench-results/memory.json (tests/infra/test_memory_sizes.py keeps this mapping
equal to that file). Lambda bills GB-seconds, so memory nobody uses is paid for every second.
"""

from __future__ import annotations

FUNCTION_MEMORY_MB: dict[str, int] = {
    # QueryIds is the exception: measured 460 MB at 1,000,000 IDs (-> 704 MB; the first-seen
    # set of IDs grows with the night), kept at 1024 MB because Lambda gives CPU in
    # proportion to memory and QueryIds' fetch-and-clean loop is CPU-bound
    # (https://docs.aws.amazon.com/lambda/latest/dg/configuration-memory.html); it runs once
    # a night, so the larger size costs next to nothing (docs/performance.md#memory).
    "query_ids": 1024,
    # BuildUrls streams IDs in and batches out: measured 121-130 MB at 1,000,000 IDs over two
    # runs (71 at 100,000: the upload buffers of a 28 MB batches.json).
    "build_url": 256,
    # InvokeEnrich spends its time waiting on the API: measured 57 MB.
    "invoke_enrich": 128,
    # CountFailedBatches lists keys a page at a time: measured 62 MB (14,286 records).
    "count_failed": 128,
    # LoadResults waits on Snowflake's COPY and MERGEs: measured 99 MB (the connector).
    "load_results": 192,
}
