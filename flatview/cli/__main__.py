"""``python -m flatview.cli``: the ``flatview`` command."""

import sys

from flatview.cli import main

sys.exit(main())
