"""`python -m kerasinit_cli`: the `kerasinit` command, without the package.

`python -m kerasinit` imports the `kerasinit` package (and Keras) first;
this entry point answers `--help` and `--version` without either.
"""

import sys

from kerasinit_cli import main

sys.exit(main())
