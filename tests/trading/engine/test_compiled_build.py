"""The book runs compiled (mypyc) after ``make install-test``, never from a stale build.

``make install`` / ``make install-test`` build it (bin/build-book); every other
engine test then exercises the compiled modules, the hypothesis property tests
against the reference book included. ``TRADING_ENGINE_PURE=1`` asks for the
interpreted source (the check that the build is used is then skipped).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

import trading.engine
from tests.trading.engine import test_reference_equivalence
from trading.engine import _native
from trading.engine.book import OrderBook

ROOT = Path(__file__).resolve().parents[3]
pure = pytest.mark.skipif(
    bool(os.environ.get("TRADING_ENGINE_PURE")), reason="interpreted run asked for"
)


@pure
def test_the_book_modules_are_the_compiled_build() -> None:
    assert trading.engine.COMPILED, (
        f"no usable compiled book in {_native.BUILD_DIR}: run `make install-test`"
    )
    for name in _native.COMPILED:
        module = sys.modules[f"trading.engine.{name}"]
        path = Path(module.__file__ or "")
        assert path.suffix == ".so" and path.is_relative_to(_native.BUILD_DIR), path
    assert type(OrderBook.place).__name__ != "function"  # a native method
    # the property tests (against the reference book) drive this same class
    assert test_reference_equivalence.OrderBook is OrderBook


def _probe(build: Path) -> dict:
    """Import the engine in a fresh interpreter with ``build`` as the build dir."""
    code = (
        "import json, warnings\n"
        "with warnings.catch_warnings(record=True) as caught:\n"
        "    warnings.simplefilter('always')\n"
        "    import trading.engine, trading.engine.book as book\n"
        "print(json.dumps({'compiled': trading.engine.COMPILED, 'file': book.__file__,\n"
        "    'warnings': [str(w.message) for w in caught]}))\n"
    )
    env = {**os.environ, "TRADING_ENGINE_BUILD": str(build)}
    env.pop("TRADING_ENGINE_PURE", None)
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True
    )
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout)


def test_a_stale_build_is_not_used_and_says_so(tmp_path: Path) -> None:
    build = tmp_path / "book"
    if _native.STAMP.exists():  # the real build, with a stamp of other sources
        shutil.copytree(_native.BUILD_DIR, build)
    else:
        build.mkdir()
    (build / "stamp.txt").write_text("0" * 64 + "\n")
    probe = _probe(build)
    assert probe["compiled"] is False
    assert probe["file"] == str(ROOT / "trading" / "engine" / "book.py")
    assert any("stale" in message for message in probe["warnings"]), probe


def test_no_build_means_the_interpreted_source_quietly(tmp_path: Path) -> None:
    probe = _probe(tmp_path / "absent")
    assert probe == {
        "compiled": False,
        "file": str(ROOT / "trading" / "engine" / "book.py"),
        "warnings": [],
    }


@pure
def test_a_copy_of_a_current_build_is_used(tmp_path: Path) -> None:
    if not trading.engine.COMPILED:
        pytest.fail(f"no usable compiled book in {_native.BUILD_DIR}: run `make install-test`")
    build = tmp_path / "book"
    shutil.copytree(_native.BUILD_DIR, build)
    probe = _probe(build)
    assert probe["compiled"] is True and probe["warnings"] == []
    assert probe["file"].startswith(str(build)) and probe["file"].endswith(".so")
