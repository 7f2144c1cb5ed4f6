"""DPG's deterministic core: assets, markets and orders; the ledger, matching, spot and futures
settlement; the engine that applies one command after another.

Built with mypyc where ``setup.py`` ran (``make``, ``pip install``): the extension modules sit
beside the pure-Python ones, which stay the reference. The pure modules run instead when
``DPG_CORE=pure`` is set, where no extension was built, and where the sources changed after the
build (an edit under ``pip install -e .``: a warning says so until the next build).
"""

from __future__ import annotations

import hashlib
import importlib.abc
import importlib.machinery
import importlib.util
import os
import sys
import warnings
from collections.abc import Sequence
from types import ModuleType

_HERE = os.path.dirname(os.path.abspath(__file__))


class _PureCore(importlib.abc.MetaPathFinder):
    """Finds ``dpg.core.*`` in its ``.py`` file, never in an extension module beside it."""

    def find_spec(self, name: str, path: Sequence[str] | None,
                  target: ModuleType | None = None) -> importlib.machinery.ModuleSpec | None:
        if not name.startswith("dpg.core."):
            return None
        file = os.path.join(_HERE, name.rsplit(".", 1)[1] + ".py")
        return importlib.util.spec_from_file_location(name, file) if os.path.exists(file) else None


def _stale() -> list[str]:
    """The compiled modules whose source is no longer the one they were built from."""
    try:
        from dpg.core._compiled import SOURCES  # type: ignore[import-not-found, unused-ignore]
    except ImportError:
        return []
    changed = []
    for module, digest in SOURCES.items():
        with open(os.path.join(_HERE, f"{module}.py"), "rb") as f:
            if hashlib.sha256(f.read()).hexdigest() != digest:
                changed.append(module)
    return changed


if os.environ.get("DPG_CORE") == "pure":
    sys.meta_path.insert(0, _PureCore())
elif changed := _stale():
    warnings.warn(f"dpg.core: {', '.join(changed)} changed since the core was compiled; running the pure-Python "
                  "core until the next build (make, or pip install -e .)", RuntimeWarning, stacklevel=1)
    sys.meta_path.insert(0, _PureCore())


def compiled() -> bool:
    """Whether this process runs the compiled core."""
    from dpg.core import engine

    return not engine.__file__.endswith(".py") if engine.__file__ else False
