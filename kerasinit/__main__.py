"""`python -m kerasinit`: the same as the `kerasinit` command."""

import sys

from kerasinit_cli import main

sys.exit(main())
