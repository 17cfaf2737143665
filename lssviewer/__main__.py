"""``python -m lssviewer`` is the same as the ``lssviewer`` command."""

import sys

from lssviewer.cli import main

sys.exit(main())
