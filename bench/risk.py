"""Margin of many accounts recomputed on one mark update (settlement/risk.py, pure).

    python bench/risk.py [--accounts 10000] [--repeat 5]

Builds accounts with USDC and SOL collateral and a SOL perp position of random size and
side, folds each around the SOL perp's mark once (prepare_for_perp: done when an account
changes, not per tick), then times, on a new mark: revalue_all (margin fraction, IMF, MMF
of every account) and liquidation_candidates (the liquidator's scan). Prints one JSON
line; the goal is under 100 ms for 10,000 accounts. A figure, not a test.
"""

import argparse
import json
import random
import sys
import time
from decimal import Decimal
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from settlement import risk  # noqa: E402

SYMBOL = "SOL_USDC_PERP"


def accounts(n: int, seed: int = 11) -> list[risk.AccountRiskInput]:
    rng = random.Random(seed)
    out = []
    for _ in range(n):
        quantity = Decimal(rng.randint(-5000, 5000)) / 10
        entry = Decimal(rng.randint(14000, 16000)) / 100
        balances = (
            risk.AssetBalance("USDC", Decimal(rng.randint(500, 50000))),
            risk.AssetBalance("SOL", Decimal(rng.randint(0, 200))),
        )
        position = risk.PerpPosition(SYMBOL, quantity, quantity * entry, Decimal(150))
        out.append(
            risk.AccountRiskInput(
                balances=balances, positions=(position,), leverage_limit=Decimal(10)
            )
        )
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--accounts", type=int, default=10_000)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    market = risk.MarketRiskData(
        index_prices={"USDC": Decimal(1), "SOL": Decimal(150), SYMBOL: Decimal(150)}
    )
    started = time.perf_counter()
    prepared = [
        risk.prepare_for_perp(a, market, SYMBOL, key=i)
        for i, a in enumerate(accounts(args.accounts))
    ]
    prepare_s = time.perf_counter() - started
    revalue, scan = [], []
    for step in range(args.repeat):
        mark = Decimal(150) - Decimal(step + 1) * Decimal("1.37")
        t = time.perf_counter()
        results = risk.revalue_all(prepared, mark)
        revalue.append(time.perf_counter() - t)
        t = time.perf_counter()
        liquidating = risk.liquidation_candidates(prepared, mark)
        scan.append(time.perf_counter() - t)
    print(
        json.dumps(
            {
                "bench": "risk",
                "accounts": args.accounts,
                "revalue_all_ms_best": round(min(revalue) * 1000, 2),
                "liquidation_scan_ms_best": round(min(scan) * 1000, 2),
                "goal_ms": 100,
                "prepare_ms_total": round(prepare_s * 1000, 1),
                "liquidating_at_last_mark": len(liquidating),
                "results": len(results),
            }
        )
    )


if __name__ == "__main__":
    main()
