"""``python -m wbc_desktop``."""

import sys

from wbc_desktop.cli import main

if __name__ == "__main__":  # guarded: a spawned fine-tuning process may import it
    sys.exit(main())
