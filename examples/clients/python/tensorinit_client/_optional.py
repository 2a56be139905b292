"""numpy and torch when installed; the package itself needs only the standard library."""

import importlib
from typing import Any, Optional


def _optional(name: str) -> Optional[Any]:
    try:
        return importlib.import_module(name)
    except ImportError:  # pragma: no cover - depends on the environment
        return None


numpy: Optional[Any] = _optional("numpy")
torch: Optional[Any] = _optional("torch")
