import sys

from flatview.cli import main

sys.exit(main())
