"""The diffusion extra is optional: without torch everything else imports, and the engine says how to install it."""

from __future__ import annotations

import subprocess
import sys

_BLOCK_TORCH = "import sys; sys.modules['torch'] = None; sys.modules['diffusers'] = None\n"


def test_cpu_engine_imports_without_torch() -> None:
    """With torch unimportable, facetalk.avatar and the CLI (training commands too) import, and the diffusion engine raises FaceTalkError."""
    code = _BLOCK_TORCH + (
        "import facetalk.avatar, facetalk.cli, facetalk.avatar.train_cli, facetalk.avatar.data.cli\n"
        "from facetalk.errors import FaceTalkError\n"
        "try:\n"
        "    import facetalk.avatar.diffusion\n"
        "except FaceTalkError as e:\n"
        "    print(e.hint)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert "pip install 'facetalk[diffusion]'" in out.stdout
