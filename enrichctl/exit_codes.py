"""Exit codes of every `enrichctl` command (one copy: `cli`, `ops`, `bench`, `snowflake-setup`).

0 done (a run that was followed SUCCEEDED), 1 the run FAILED or a check found a problem,
2 bad usage or configuration the operator must fix (one line on stderr says why),
130 interrupted (Ctrl-C).
"""

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_USAGE = 2
EXIT_INTERRUPTED = 130
