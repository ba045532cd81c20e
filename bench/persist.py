"""Orders/s through the engine worker with PostgreSQL, batching on and off.

    python bench/persist.py [--orders 20000] [--clients 200] [--via local|channels]
                            [--unbatched-orders N] [--database-url URL]

Creates (and drops) its own database `bench_persist` on the server of DATABASE_URL
(default postgres://postgres@127.0.0.1:5432/test), funds 32 accounts, then sends limit
orders (about 40% crossing the spread), validated beforehand as the web processes do, from
`--clients` concurrent callers: asyncio tasks on one event loop awaiting `acall`, as the
async order views do (one order per call, the next sent when the last is answered). The
engine worker checks funds, matches, settles and persists, one transaction per batch, and
answers after commit:

- `--via local` (default): the embedded worker, LocalEngineClient's engine thread in this
  process (the callers' loop shares the process, so the GIL, with it);
- `--via channels`: the production worker, `manage.py runworker engine` as a process of its
  own, reached over Redis (REDIS_URL, default redis://127.0.0.1:6379/0; the run uses Redis
  database 15 and a channel prefix of its own, so it meets no other process). acall sends
  the calls of one turn of the loop as one message (the worker takes a message whole), so
  the unbatched run sends each order in a message of its own instead.

Runs the workload with ENGINE_BATCH_SIZE=1 (no batching: `--unbatched-orders`, by default a
quarter of them) and with batching (500), and prints one JSON line: orders answered per
second, refusals other than INSUFFICIENT_FUNDS by code, and whether ledger_check passes. A
figure, not a test: timings on a shared machine are noisy.
"""

import argparse
import asyncio
import functools
import json
import os
import random
import subprocess
import sys
import time
from collections import Counter
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


def run(batch_size: int, orders: list, clients: int, accounts: list, via: str) -> dict:
    from django.conf import settings

    from accounts.errors import ExchangeError
    from trading import services

    settings.ENGINE_BATCH_SIZE = batch_size
    # Throughput, not latency: unbatched, 200 callers queue for longer than the default.
    settings.ENGINE_TIMEOUT_SECONDS = 300
    worker = _start_worker(batch_size) if via == "channels" else None
    services.engine_client.cache_clear()
    client = services.engine_client()
    batches: list[int] = []  # commands per batch (local: the engine is in this process)
    if worker is None:
        commit = client.core.commit_batch

        def counted(commands: list) -> tuple:
            batches.append(len(commands))
            return commit(commands)

        client.core.commit_batch = counted
    # Validation happens in the web processes; here only the worker is measured.
    sol = services.market("SOL_USDC")  # read once: building the commands is not timed
    commands = [services.order_command(accounts[who], params, sol) for who, params in orders]
    chunks = [commands[i::clients] for i in range(clients)]
    failures: Counter[str] = Counter()  # refusals other than INSUFFICIENT_FUNDS, by code
    answered = []

    async def send(chunk: list, call) -> None:  # noqa: ANN001
        for command in chunk:
            try:
                result = (await call([command]))[0]
            except ExchangeError as exc:  # e.g. TIMEOUT: counted, not answered
                failures[exc.code] += 1
                continue
            answered.append(1)
            if "error" in result and result["error"]["code"] != "INSUFFICIENT_FUNDS":
                failures[result["error"]["code"]] += 1

    async def clients_run() -> float:
        await _ready(client)  # the worker started and restored its books before timing
        call = client.acall
        if worker is not None and batch_size == 1:
            # acall puts the calls of one turn of the loop in one message, which the worker
            # takes whole: without batching, each order goes in a message of its own.
            from channels import DEFAULT_CHANNEL_LAYER
            from channels.layers import channel_layers

            layer = channel_layers.make_backend(DEFAULT_CHANNEL_LAYER)
            call = functools.partial(client._call, layer)
        started = time.perf_counter()
        await asyncio.gather(*(send(c, call) for c in chunks))
        return time.perf_counter() - started

    try:
        elapsed = asyncio.run(clients_run())
    finally:
        if worker is not None:
            worker.terminate()
            worker.wait(30)
        else:
            client.close()
    return {
        "orders": len(orders),
        "answered": len(answered),
        "seconds": round(elapsed, 3),
        "orders_per_s": round(len(answered) / elapsed),
        "failures": dict(failures),
        **(
            {"mean_batch": round(sum(batches) / (len(batches) - 1), 1)} if batches else {}
        ),  # no ping
    }


async def _ready(client) -> None:  # noqa: ANN001
    from accounts.errors import ExchangeError

    for _ in range(60):
        try:
            await client.acall([])
            return
        except ExchangeError:
            await asyncio.sleep(0.5)
    raise SystemExit("the engine worker did not answer")


def _start_worker(batch_size: int) -> subprocess.Popen:
    from django.conf import settings

    env = {**os.environ, "ENGINE_BATCH_SIZE": str(batch_size)}
    return subprocess.Popen(
        [sys.executable, str(ROOT / "manage.py"), "runworker", settings.ENGINE_CHANNEL],
        env=env,
        cwd=ROOT,
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--orders", type=int, default=20000)
    parser.add_argument("--clients", type=int, default=200)
    parser.add_argument("--via", choices=("local", "channels"), default="local")
    parser.add_argument(
        "--unbatched-orders",
        type=int,
        default=None,
        help="orders of the run without batching (default: a quarter of --orders; 0: skip)",
    )
    parser.add_argument(
        "--database-url",
        default=os.environ.get("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/test"),
    )
    args = parser.parse_args()
    os.environ["DATABASE_URL"] = _database(args.database_url, "bench_persist")
    if args.via == "channels":
        redis = os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0")
        os.environ["REDIS_URL"] = redis.rpartition("/")[0] + "/15"
        os.environ["CHANNEL_PREFIX"] = f"bench-persist-{os.getpid()}"
        os.environ["ENGINE_CLIENT"] = "exchange.engine.consumer.ChannelEngineClient"
    else:
        os.environ.pop("REDIS_URL", None)
        os.environ["ENGINE_CLIENT"] = "exchange.engine.local.LocalEngineClient"
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
    count = args.orders // 4 if args.unbatched_orders is None else args.unbatched_orders
    unbatched = run(1, orders[:count], args.clients, accts, args.via) if count else None
    batched = run(500, orders, args.clients, accts, args.via)
    from accounts.selectors import ledger_report

    print(
        json.dumps(
            {
                "bench": "persist",
                "database": "postgresql",
                "via": args.via,
                "clients": args.clients,
                "batching_off": unbatched,
                "batching_on": batched,
                "speedup": round(batched["orders_per_s"] / unbatched["orders_per_s"], 2)
                if unbatched
                else None,
                "ledger_clean": ledger_report().clean,
            }
        )
    )
    os._exit(0)  # the engine threads are daemons


if __name__ == "__main__":
    main()
