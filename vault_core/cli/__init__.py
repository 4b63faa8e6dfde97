"""``vault-console``, the operator command line (``parser.py`` documents it): parser, commands, no cycle.

``common`` holds what the commands share; ``commands`` and ``admin`` each register their
subcommands; ``parser`` builds the parser from both and runs ``main``.
"""

from .parser import build_parser, main

__all__ = ["build_parser", "main"]
