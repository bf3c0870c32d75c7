"""The currency converter's builds by name: the clean one and the rug pulls.

Names only (from `images.builds`, which imports no program it describes): the commands that
push a build offer these as choices in `--help`, before anything that pushes is imported.
"""

from __future__ import annotations

from trustusbank.images.builds import BUILDS

CONVERTER = "currency-converter"
CLEAN = "clean"
RUG_PULLS = tuple(v for v in BUILDS[CONVERTER].variants if v != CLEAN)
DEFAULT_RUG_PULL = "real-rugpull"
