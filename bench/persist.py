"""Orders/s through the engine worker with PostgreSQL, batching on and off.

    python bench/persist.py [--orders 20000] [--clients 16] [--database-url URL]

Creates (and drops) its own database `bench_persist` on the server of DATABASE_URL
(default postgres://postgres@127.0.0.1:5432/test), funds accounts, then sends limit orders
(about 40% crossing the spread) from client threads through the embedded engine worker
(LocalEngineClient: one engine thread, one transaction per batch). Runs the same
workload with ENGINE_BATCH_SIZE=1 (no batching) and with batching, and prints one JSON
line. A figure, not a test: timings on a shared machine are noisy.
"""

import argparse
import json
import os
import random
import sys
import threading
import time
from decimal import Decimal
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def _database(url: str, name: str) -> str:
    import psycopg

    base, _, _ = url.rpartition("/")
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}"')
        conn.execute(f'CREATE DATABASE "{name}"')
    return f"{base}/{name}"


def workload(count: int, seed: int = 7) -> list[tuple[int, dict]]:
    rng = random.Random(seed)
    orders = []
    for _ in range(count):
        side = rng.choice(("Bid", "Ask"))
        aggressive = rng.random() < 0.4
        offset = rng.randint(0, 50)
        if side == "Bid":
            ticks = 10000 + offset if aggressive else 9999 - offset
        else:
            ticks = 10000 - offset if aggressive else 10001 + offset
        order = {
            "symbol": "SOL_USDC",
            "side": side,
            "orderType": "Limit",
            "price": str(Decimal(ticks).scaleb(-2)),
            "quantity": str(rng.randint(1, 20)),
        }
        orders.append((rng.randrange(32), order))
    return orders


def run(batch_size: int, orders: list, clients: int, accounts: list) -> dict:
    from django.conf import settings

    from trading import services

    settings.ENGINE_BATCH_SIZE = batch_size
    settings.ENGINE_CLIENT = "exchange.engine.local.LocalEngineClient"
    services.engine_client.cache_clear()
    client = services.engine_client()
    client.call([])  # start and restore before timing
    # Validation happens in the web processes; here only the worker is measured.
    commands = [services.order_command(accounts[who], params) for who, params in orders]
    chunks = [commands[i::clients] for i in range(clients)]
    failures = []

    def send(chunk: list) -> None:
        for command in chunk:
            result = client.call([command])[0]
            if "error" in result and result["error"]["code"] != "INSUFFICIENT_FUNDS":
                failures.append(result["error"])

    threads = [threading.Thread(target=send, args=(c,)) for c in chunks]
    started = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    elapsed = time.perf_counter() - started
    client.close()
    return {
        "orders": len(orders),
        "seconds": round(elapsed, 3),
        "orders_per_s": round(len(orders) / elapsed),
        "failures": len(failures),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--orders", type=int, default=20000)
    parser.add_argument("--clients", type=int, default=16)
    parser.add_argument(
        "--database-url",
        default=os.environ.get("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/test"),
    )
    args = parser.parse_args()
    os.environ["DATABASE_URL"] = _database(args.database_url, "bench_persist")
    os.environ.pop("REDIS_URL", None)
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "exchange.settings")
    os.environ.setdefault("LOG_LEVEL", "WARNING")
    import django

    django.setup()
    from decimal import Decimal

    from django.core.management import call_command

    from accounts import services as accounts
    from accounts.models import Account

    call_command("migrate", verbosity=0)
    accts = []
    for i in range(32):
        account = Account.objects.create(name=f"bench{i}")
        accounts.deposit(account, "USDC", Decimal("100000000"))
        accounts.deposit(account, "SOL", Decimal("1000000"))
        accts.append(account)
    orders = workload(args.orders)
    unbatched = run(1, orders[: max(args.orders // 4, 1)], args.clients, accts)
    batched = run(500, orders, args.clients, accts)
    from accounts.selectors import ledger_report

    print(
        json.dumps(
            {
                "bench": "persist",
                "database": "postgresql",
                "clients": args.clients,
                "batching_off": unbatched,
                "batching_on": batched,
                "speedup": round(batched["orders_per_s"] / unbatched["orders_per_s"], 2),
                "ledger_clean": ledger_report().clean,
            }
        )
    )
    os._exit(0)  # the engine threads are daemons


if __name__ == "__main__":
    main()
