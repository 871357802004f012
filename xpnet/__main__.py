"""``python -m xpnet``: the demo and the machine report (see :mod:`xpnet.cli`).

    python -m xpnet demo [--backend NAME] [--epochs N] [--quick]
    python -m xpnet info
"""
from __future__ import annotations

import sys

from .cli import main

__all__ = ["main"]

if __name__ == "__main__":
    sys.exit(main())
