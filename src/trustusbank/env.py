"""Every `TRUSTUSBANK_*` setting, said once (filled in by the settings change)."""

from __future__ import annotations
