"""Read-only inspection commands (--runs-*, --compare, --paper-sessions-*). Placeholder until the
registry lands: every flag is refused with exit 2."""

from __future__ import annotations

import sys


def handle(opts) -> int:
    print("ERROR: inspection commands are not available in this version yet", file=sys.stderr)
    return 2
