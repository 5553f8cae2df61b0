"""``python -m lvss_server`` (installed) or ``python -m server`` (source checkout): same as ``lvss serve``."""
import sys

from .cli import main

sys.exit(main())
