"""``python -m reslearn`` is the ``reslearn`` command."""

import sys

from reslearn.cli import main

sys.exit(main())
