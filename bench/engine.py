"""Throughput of the order book (trading.engine) against pyorderbook.

Workload (fixed seed): ``--orders`` limit orders on one market, about 40%
aggressive (priced through the mid, so they take) and the rest passive (priced
away from the mid, so they rest), then every order still resting is cancelled,
on both books in the same sequence (placement order: pyorderbook's order map
order), so both walk memory alike (our cancel requests are built in that order
too, as pyorderbook's, its order objects, lie).
Both books get the same orders; request objects are built before the clock
starts so each side is timed on its book calls only. Orders are spread over
1000 accounts with selfTradePrevention=Allow, because pyorderbook has no
self-trade prevention: both books then make exactly the same trades (checked
by comparing the resting order count and lots after the add phase). A worker
consumes events at once, so the timed loop drops the returned events. Prints one JSON line:
orders/s per phase for each book and the ratio ours / pyorderbook.

``book_compiled`` says whether ``ours`` ran the mypyc build of the book (``make
install``, see trading/engine/_native.py). When it did, the interpreted source is
measured too, in a subprocess with ``TRADING_ENGINE_PURE=1``, as
``ours_interpreted`` (and its ratio to pyorderbook's figures of this run).

    .venv/bin/python bench/engine.py --orders 200000 [--profile]

pyorderbook is optional (``pip install -r requirements-bench.txt``). Timings
are noisy; nothing is asserted.
"""

from __future__ import annotations

import argparse
import cProfile
import gc
import json
import os
import pstats
import random
import subprocess
import sys
import time
from decimal import Decimal
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import trading.engine  # noqa: E402
from trading.engine.book import OrderBook  # noqa: E402
from trading.engine.orders import (  # noqa: E402
    MarketRules,
    PlaceOrder,
    SelfTradePrevention,
    Side,
)

TICK = Decimal("0.01")
STEP = Decimal("0.01")
MID = 10_000  # ticks
ACCOUNTS = 1000  # orders are spread over this many accounts


def workload(count: int, seed: int) -> list[tuple[bool, int, int]]:
    """(is_bid, price in ticks, quantity in lots) for each order."""
    rng = random.Random(seed)
    orders = []
    for _ in range(count):
        is_bid = rng.random() < 0.5
        if rng.random() < 0.4:  # aggressive: crosses the mid by up to 5 ticks
            offset = rng.randint(0, 5)
            price = MID + offset if is_bid else MID - offset
        else:  # passive: 1..50 ticks away on its own side
            offset = rng.randint(1, 50)
            price = MID - offset if is_bid else MID + offset
        orders.append((is_bid, price, rng.randint(1, 10)))
    return orders


def run_ours(orders: list[tuple[bool, int, int]], profile: bool) -> dict[str, float]:
    rules = MarketRules("BENCH_USDC", TICK, STEP, max_quantity=None)
    book = OrderBook(rules)
    commands = [
        PlaceOrder(
            i,
            i % ACCOUNTS,
            Side.BID if is_bid else Side.ASK,
            price=price,
            quantity=qty,
            self_trade_prevention=SelfTradePrevention.ALLOW,
        )
        for i, (is_bid, price, qty) in enumerate(orders, start=1)
    ]
    profiler = cProfile.Profile() if profile else None
    place = book.place
    settle_gc()
    start = time.perf_counter()
    if profiler:
        profiler.enable()
    for cmd in commands:
        place(cmd)  # a worker consumes the events at once; here they are dropped
    add_seconds = time.perf_counter() - start
    if profiler:
        profiler.disable()
    views = book.resting_orders()
    # the cancel requests in placement order, each built in the order it is sent:
    # the tuples sorted() returns lie where the views were made (price-level
    # order), so walking them would cost a cache miss a request that
    # pyorderbook's requests (its own orders, laid out in placement order) do not
    resting = [(oid, account) for oid, account in sorted((v.order_id, v.account) for v in views)]
    resting_lots = sum(view.remaining for view in views)
    cancel = book.cancel
    settle_gc()
    if profiler:
        profiler.enable()
    start = time.perf_counter()
    for order_id, account in resting:
        cancel(account, order_id)
    cancel_seconds = time.perf_counter() - start
    if profiler:
        profiler.disable()
        pstats.Stats(profiler, stream=sys.stderr).sort_stats("tottime").print_stats(15)
    assert not book.resting_orders()
    return {
        "add_match_per_s": round(len(orders) / add_seconds),
        "cancel_per_s": round(len(resting) / cancel_seconds) if resting else 0,
        "fills": book.trade_id,
        "resting_after_add": len(resting),
        "resting_lots": resting_lots,
    }


def run_pyorderbook(orders: list[tuple[bool, int, int]]) -> dict[str, float] | None:
    try:
        import logging

        import pyorderbook
    except ImportError:
        return None
    logging.getLogger("pyorderbook").setLevel(logging.WARNING)
    book = pyorderbook.Book()
    requests = [
        (pyorderbook.bid if is_bid else pyorderbook.ask)("BENCH_USDC", price * TICK, qty)
        for is_bid, price, qty in orders
    ]
    match = book.match
    settle_gc()
    start = time.perf_counter()
    for request in requests:
        match(request)
    add_seconds = time.perf_counter() - start
    resting = list(book.order_map.values())  # placement order
    cancel = book.cancel
    settle_gc()
    start = time.perf_counter()
    for order in resting:
        cancel(order)
    cancel_seconds = time.perf_counter() - start
    return {
        "add_match_per_s": round(len(orders) / add_seconds),
        "cancel_per_s": round(len(resting) / cancel_seconds) if resting else 0,
        "resting_after_add": len(resting),
        "resting_lots": sum(order.quantity for order in resting),
        "version": getattr(pyorderbook, "__version__", "?"),
    }


def settle_gc() -> None:
    """Collect, then freeze what exists (the prepared requests) out of the GC's
    view, so each timed phase pays only for the garbage it makes itself."""
    gc.unfreeze()
    gc.collect()
    gc.freeze()


def best_of(runs: list) -> dict:
    """The fastest figure per phase over repeated runs (timings are noisy)."""
    best = dict(runs[0])
    for key in ("add_match_per_s", "cancel_per_s"):
        best[key] = max(run[key] for run in runs)
    return best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--orders", type=int, default=200_000)
    parser.add_argument("--seed", type=int, default=20240601)
    parser.add_argument("--repeat", type=int, default=3, help="best of N runs per book")
    parser.add_argument("--profile", action="store_true", help="cProfile ours (one run)")
    parser.add_argument(
        "--no-interpreted", action="store_true", help="skip the interpreted run of ours"
    )
    parser.add_argument("--ours-only", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    orders = workload(args.orders, args.seed)
    if args.ours_only:  # the interpreted run, in the subprocess started below
        print(json.dumps(best_of([run_ours(orders, False) for _ in range(args.repeat)])))
        return
    ours_runs, their_runs = [], []
    for _ in range(1 if args.profile else args.repeat):
        gc.collect()
        ours_runs.append(run_ours(orders, args.profile))
        gc.collect()
        their_runs.append(run_pyorderbook(orders))
    ours = best_of(ours_runs)
    theirs = None if their_runs[0] is None else best_of(their_runs)
    interpreted = None
    if trading.engine.COMPILED and not args.profile and not args.no_interpreted:
        interpreted = run_interpreted(args)
    print(
        json.dumps(
            {
                "bench": "engine",
                "orders": args.orders,
                "repeat": args.repeat,
                "seed": args.seed,
                "python": sys.version.split()[0],
                "book_compiled": trading.engine.COMPILED,
                "ours": ours,
                "pyorderbook": theirs,
                "ratio_ours_over_pyorderbook": ratios(ours, theirs),
                "ours_interpreted": interpreted,
                "ratio_interpreted_over_pyorderbook": ratios(interpreted, theirs),
            }
        )
    )


def ratios(ours: dict | None, theirs: dict | None) -> dict | None:
    if not ours or not theirs:
        return None
    return {
        phase: round(ours[key] / theirs[key], 2) if theirs[key] else None
        for phase, key in (
            ("add_match", "add_match_per_s"),
            ("cancel", "cancel_per_s"),
        )
    }


def run_interpreted(args: argparse.Namespace) -> dict:
    """``ours`` on the interpreted source: this script again, in a subprocess."""
    command = [sys.executable, __file__, "--ours-only"]
    command += ["--orders", str(args.orders), "--seed", str(args.seed)]
    command += ["--repeat", str(args.repeat)]
    env = {**os.environ, "TRADING_ENGINE_PURE": "1"}
    out = subprocess.run(command, env=env, capture_output=True, text=True, check=True)
    return json.loads(out.stdout)


if __name__ == "__main__":
    main()
