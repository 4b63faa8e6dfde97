"""``python -m vault_core.cli``."""

import sys

from .parser import main

sys.exit(main())
