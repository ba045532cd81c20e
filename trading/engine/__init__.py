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
