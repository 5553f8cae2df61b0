"""``python -m server``: same as ``lvss serve``."""
import sys

from .cli import main

sys.exit(main())
