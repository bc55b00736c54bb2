"""Suite-wide test settings."""

from __future__ import annotations

from hypothesis import settings

# Hypothesis' per-example deadline (200 ms) is a timing assertion: on a busy 2-core machine
# (two suites at once) a pure decoder can miss it. Properties are checked without it.
settings.register_profile("languard", deadline=None)
settings.load_profile("languard")
