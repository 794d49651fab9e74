"""`python -m enrichctl` = the `enrichctl` console script."""

import sys

from enrichctl.cli import main

sys.exit(main())
