"""The order book and matcher: pure Python, no Django, no I/O.

* ``ticks``: ``Scale`` converts edge Decimals to integer ticks / lots / quote
  units and raises ``PrecisionError`` for anything finer than tick or step.
* ``orders``: enums (Backpack spellings), the ``PlaceOrder`` command,
  ``Attached`` stop-loss / take-profit, ``MarketRules``.
* ``book``: ``OrderBook`` -- ``place``, ``cancel``, ``cancel_all``,
  ``set_position``, ``on_price``, ``set_state``, the reads, ``restore``.
* ``events``: what every call returns, each with a gapless ``seq``.
* ``views``: ``OrderView`` / ``Depth`` snapshots (also restore's input).
* ``levels`` / ``triggers``: the book's internal containers.
* ``reduce_only`` / ``conditional``: the book's reduce-only and trigger /
  stop-loss / take-profit logic (mixins of ``OrderBook``); ``recovery``:
  OrderView <-> order conversion for ``restore``.
"""

# The compiled build (mypyc, see _native.py) goes first on the package path when
# its stamp matches these sources; otherwise the modules run interpreted.
import importlib.util as _importlib_util
import os as _os
import sys as _sys
import warnings as _warnings

from trading.engine import _native

COMPILED = False  # True when the book's modules come from the mypyc build


def _use_build() -> bool:
    if _os.environ.get("TRADING_ENGINE_PURE") or not _native.STAMP.exists():
        return False
    if _native.STAMP.read_text().strip() != _native.source_digest():
        _warnings.warn(
            f"trading.engine: the compiled book in {_native.BUILD_DIR} is stale (sources "
            "edited since it was built); running the interpreted source. Rebuild: make install",
            RuntimeWarning,
            stacklevel=2,
        )
        return False
    shared = f"{_native.GROUP}__mypyc"
    if shared not in _sys.modules:  # the modules' shared library, found by its path
        [path] = _native.BUILD_DIR.glob(f"{shared}.*")
        spec = _importlib_util.spec_from_file_location(shared, path)
        assert spec is not None and spec.loader is not None
        module = _importlib_util.module_from_spec(spec)
        _sys.modules[shared] = module
        spec.loader.exec_module(module)
    __path__.insert(0, str(_native.BUILD_DIR / "trading" / "engine"))
    return True


COMPILED = _use_build()
