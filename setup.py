"""DPG's build: the core (``dpg.core``: matching, ledger, spot and futures settlement) compiled to a
C extension with mypyc, beside its pure-Python modules, which stay the reference.

``DPG_CORE=pure`` at install time builds no extension. The sources' hashes are written to
``dpg/core/_compiled.py``, so the core uses the extension only while it matches them (an edit after
``pip install -e .`` runs the pure modules until the next build: see ``dpg/core/__init__.py``).
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

from setuptools import setup

CORE = Path("src/dpg/core")
# every module of the core but the command classes (mypyc loses a dataclass's ClassVar, which carries
# each command's journal kind) and the helpers of tools outside the engine
COMPILED = ("engine", "matching", "ledger", "spot", "futures", "margin", "funding", "model", "events", "rules",
            "state", "errors", "governance")


def _extensions() -> list[object]:
    record = CORE / "_compiled.py"
    if os.environ.get("DPG_CORE") == "pure":
        record.unlink(missing_ok=True)
        return []
    from mypyc.build import mypycify

    sources = {m: hashlib.sha256((CORE / f"{m}.py").read_bytes()).hexdigest() for m in COMPILED}
    lines = "".join(f"    {m!r}: {h!r},\n" for m, h in sources.items())
    record.write_text('"""Written by setup.py: the sources the compiled core was built from (sha-256)."""\n\n'
                      f"SOURCES = {{\n{lines}}}\n")
    modules: list[object] = mypycify([str(CORE / f"{m}.py") for m in COMPILED], opt_level="3",
                                     group_name="dpg_core")
    return modules


setup(ext_modules=_extensions())
