"""Write an executable named like the real Arma 3 server that runs the fake one.

The file starts with a `#!<this python>` line, so the process's command line is stable
(`python <folder>/arma3server_x64 -port=...`) and the supervisor can re-adopt it, and the
profile's allow-list of basenames (`arma3server_x64`, `arma3server`) accepts it.
"""

from __future__ import annotations

import sys
from pathlib import Path

__all__ = ["REPO_ROOT", "write_fake_arma3"]

REPO_ROOT = Path(__file__).resolve().parents[2]

_SHIM = """#!{python}
import sys
sys.path.insert(0, {root!r})
from tests.fakes.arma3_server import main
sys.exit(main())
"""


def write_fake_arma3(folder: Path, name: str = "arma3server_x64") -> Path:
    """Create `<folder>/<name>` (mode 0755) and return its path."""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    path.write_text(_SHIM.format(python=sys.executable, root=str(REPO_ROOT)))
    path.chmod(0o755)
    return path
