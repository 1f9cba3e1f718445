"""``python -m wbc_desktop``."""

import sys

from wbc_desktop.cli import main

sys.exit(main())
