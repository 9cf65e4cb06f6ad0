"""Fixtures of tests/deploy. Helpers live in deploy_helpers.py (tests/e2e has its own conftest)."""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
