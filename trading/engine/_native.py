"""Where the compiled (mypyc) build of the book lives and how it is recognised.

``make install`` / ``make install-test`` run ``bin/build-book``, which compiles
:data:`COMPILED` with mypyc into :data:`BUILD_DIR` (gitignored) and writes a
stamp holding :func:`source_digest` of exactly those sources.
``trading/engine/__init__.py`` puts the build on the package ``__path__`` only
when the stamp matches the sources on disk, so an edited module is never
shadowed by a stale extension: it falls back to the interpreted source and warns.
``TRADING_ENGINE_PURE=1`` forces the interpreted source;
``TRADING_ENGINE_BUILD`` names another build directory (the tests use it).

Stdlib only: imported by the package's ``__init__`` before any engine module.
"""

from __future__ import annotations

import hashlib
import os
import sys
import sysconfig
from pathlib import Path

PACKAGE_DIR = Path(__file__).resolve().parent
ROOT = PACKAGE_DIR.parent.parent
BUILD_DIR = Path(os.environ.get("TRADING_ENGINE_BUILD") or ROOT / "build" / "book")
STAMP = BUILD_DIR / "stamp.txt"
GROUP = "trading_engine_book"  # mypyc's shared library: GROUP + "__mypyc"

# the modules compiled together (the book and what it calls per order)
COMPILED = ("orders", "events", "levels", "triggers", "reduce_only", "conditional", "book")


def source_digest() -> str:
    """sha256 of the compiled modules' sources and the interpreter's ABI."""
    digest = hashlib.sha256()
    digest.update(f"{sys.implementation.cache_tag} {sysconfig.get_config_var('SOABI')}".encode())
    for name in COMPILED:
        digest.update(f"\0{name}\0".encode())
        digest.update((PACKAGE_DIR / f"{name}.py").read_bytes())
    return digest.hexdigest()
