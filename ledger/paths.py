"""Where the project's data files (schemas, legal tables, examples) live.

The repository is installed editable (``pip install -e .``), so data stays at the repository
root beside the packages. ``AUDITLEDGER_HOME`` overrides that for unusual installs.
"""

from __future__ import annotations

import os
from pathlib import Path

ROOT = Path(os.environ.get("AUDITLEDGER_HOME", Path(__file__).resolve().parent.parent))
SCHEMAS = ROOT / "schemas"
EXAMPLES = ROOT / "examples"
SHARED = ROOT.parent / "shared"
