"""``python -m fla VERB ...``: see ``fla.cli``."""
import sys

from fla.cli import main

if __name__ == "__main__":
    sys.exit(main())
