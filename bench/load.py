"""Load benchmark of the production topology on loopback; prints ONE JSON line.

Starts `bin/run-prod` (or attaches to --url), creates --clients funded accounts with API
keys, then for --duration seconds the clients place signed limit orders at --rate orders
per second in total (open loop: a late answer does not slow the schedule) and cancel most
of them again, while --ws websocket clients subscribe to depth and trades of the market.

    python bench/load.py                                  # small: ~1 minute
    python bench/load.py --rate 1500 --clients 32          # throughput goal: 1,500 orders/s
    python bench/load.py --rate 500                        # latency goal: p99 < 50 ms
    python bench/load.py --rate 100 --ws 1000              # fan-out goal: p99 lag < 100 ms

Figures (of the requests due after the first --warmup seconds of load: new connections,
cold caches and the first engine batch are not what the goals are about): orders/s =
acknowledged placements per second (cancels are counted apart; acked_per_s is both: --rate
is the rate of requests, placements and cancels together); latency = from a request's
scheduled time to its answer (the HTTP round trip plus any wait for a client connection:
each client keeps at most --inflight requests open); websocket lag = receive time minus
the event time "E" the engine worker stamps when it publishes; cores_busy = CPU cores used
per role (web, engine, risk, celery, postgres, redis, the load clients, the whole machine, and
"other": what else ran on the machine, e.g. other people's tests) during the load;
over_p99_by_tenth = the requests slower than p99 by the tenth of the wall-clock second
they were answered in (`--trace FILE` writes every measured request's answer time and
latency, for a closer look). Needs PostgreSQL and Redis (--database-url, --redis-url);
everything stays on 127.0.0.1.
"""

import argparse
import asyncio
import base64
import hashlib
import json
import os
import random
import signal
import socket
import statistics
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import urlsplit

import aiohttp
import uvloop
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

try:
    from nacl.signing import SigningKey
except ImportError:  # cryptography's then
    SigningKey = None

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from accounts.signing import signing_string  # noqa: E402 - pure module, no Django set-up

ACCOUNTS = """
import json
from decimal import Decimal
from django.contrib.auth import get_user_model
from accounts import services
out = []
for i in range({n}):
    user, _ = get_user_model().objects.get_or_create(username=f"bench{tag}-{{i}}")
    account = services.account_for_user(user)
    services.deposit(account, "USDC", Decimal("100000000"))
    for asset in {bases}:
        services.deposit(account, asset, Decimal("1000000"))
    key, secret = services.create_api_key(account, label="bench")
    out.append([key.public_key, secret])
print("ACCOUNTS " + json.dumps(out))
"""


def pct(values: list[float], p: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    return round(ordered[min(len(ordered) - 1, int(len(ordered) * p / 100))], 2)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def ensure_database(url: str, fresh: bool) -> None:
    """Create the run's database; `fresh`: drop it first. Runs on a database kept from
    earlier runs (hundreds of thousands of orders after a day of them) are slower and do
    not compare with each other."""
    import psycopg

    name = url.rsplit("/", 1)[1].split("?")[0]
    admin = url.rsplit("/", 1)[0] + "/postgres"
    with psycopg.connect(admin, autocommit=True) as conn:
        if fresh:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}"')
        if not conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name]).fetchone():
            conn.execute(f'CREATE DATABASE "{name}"')


def start_topology(args: argparse.Namespace, env: dict, port: int, log: Path) -> subprocess.Popen:
    env = {
        **env,
        "PORT": str(port),
        "HOST": "127.0.0.1",
        "WEB_WORKERS": str(args.web_workers),
        "ENGINE_SHARDS": args.shards,
        "MAX_RESTARTS": "0",
    }
    return subprocess.Popen(
        [sys.executable, str(ROOT / "bin" / "run-prod")],
        cwd=ROOT,
        env=env,
        stdout=log.open("wb"),
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )


def create_accounts(n: int, symbols: list[str], env: dict) -> list[tuple[str, str]]:
    bases = sorted({s.split("_")[0] for s in symbols})
    code = ACCOUNTS.format(n=n, tag=f"{os.getpid()}{int(time.time())}", bases=bases)
    out = subprocess.run(
        [sys.executable, "manage.py", "shell", "-c", code],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    ).stdout
    line = next(x for x in out.splitlines() if x.startswith("ACCOUNTS "))
    return [tuple(x) for x in json.loads(line[len("ACCOUNTS ") :])]


async def wait_up(base: str, seconds: float, topology: subprocess.Popen | None) -> None:
    deadline = time.monotonic() + seconds
    async with aiohttp.ClientSession() as session:
        while time.monotonic() < deadline:
            if topology is not None and topology.poll() is not None:
                raise SystemExit("the topology exited; see var/bench-load.log")
            try:
                async with session.get(f"{base}/api/v1/markets") as r:
                    if r.status == 200:
                        return
            except aiohttp.ClientError:
                pass
            await asyncio.sleep(0.5)
    raise SystemExit(f"the topology did not come up at {base} in {seconds} s")


TICKS = os.sysconf("SC_CLK_TCK")
ROLES = (  # (role, words of its command line), first match wins
    ("load", ("bench/load.py",)),
    ("web", ("uvicorn", "multiprocessing.spawn")),
    ("engine", ("runworker",)),
    ("risk", ("riskworker",)),
    ("celery", ("celery",)),
    ("postgres", ("postgres",)),
    ("redis", ("redis-server",)),
)


def cpu_by_role() -> dict:
    """{pid: (role, CPU seconds used so far)} of the processes of each role on this machine
    (other engineers' processes of the same kind included: a shared machine is noisy), and
    the whole machine's busy seconds under the pid "machine"."""
    out: dict = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode()
            fields = (entry / "stat").read_text().rpartition(")")[2].split()
        except OSError:
            continue
        role = next((r for r, words in ROLES if any(w in cmdline for w in words)), None)
        if role:
            out[entry.name] = (role, (int(fields[11]) + int(fields[12])) / TICKS)
    cpu = Path("/proc/stat").read_text().splitlines()[0].split()[1:]
    out["machine"] = ("machine", (sum(map(int, cpu)) - int(cpu[3]) - int(cpu[4])) / TICKS)
    return out


def cores_busy(before: dict, after: dict, seconds: float) -> dict[str, float]:
    """Cores used per role between two `cpu_by_role` snapshots (processes that ended in
    between are not counted)."""
    used: dict[str, float] = {}
    for pid, (role, total) in after.items():
        used[role] = used.get(role, 0) + total - before.get(pid, (role, 0))[1]
    busy = {role: round(value / seconds, 2) for role, value in used.items()}
    busy["other"] = round(busy["machine"] - sum(v for r, v in busy.items() if r != "machine"), 2)
    return busy


class Stats:
    def __init__(self) -> None:
        self.place_ms: list[float] = []
        self.cancel_ms: list[float] = []
        self.answered: list[tuple[float, float]] = []  # (wall clock when answered, ms)
        self.placed = 0
        self.cancelled = 0
        self.errors: dict[str, int] = {}
        self.lag_ms: list[float] = []
        self.ws_messages = 0
        self.ws_connected = 0
        self.ws_errors = 0

    def error(self, code: str) -> None:
        self.errors[code] = self.errors.get(code, 0) + 1


class HttpError(Exception):
    """The connection broke or the answer was not HTTP/1.1 as expected."""


IDLE_REUSE = 3.0  # seconds an idle connection is reused (uvicorn closes them after 5)


class Connection(asyncio.Protocol):
    """One keep-alive HTTP/1.1 connection to the server: one request at a time, answers
    framed by Content-Length or chunked. The traders' client: the load clients share the
    machine's 2 cores with the server, so they should cost as little as they can."""

    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self.buffer = bytearray()
        self.waiter: asyncio.Future | None = None
        self.closed = False
        self.used = time.monotonic()

    def connection_made(self, transport: asyncio.Transport) -> None:
        self.transport = transport

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        if self.waiter is not None and not self.waiter.done():
            self.waiter.set_exception(HttpError(f"connection lost: {exc}"))

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        if self.waiter is None or self.waiter.done():
            return
        try:
            answer = self._parse()
        except HttpError as exc:
            self.waiter.set_exception(exc)
            return
        if answer is not None:
            self.waiter.set_result(answer)

    def _parse(self) -> tuple[int, bytes] | None:
        buffer = self.buffer
        end = buffer.find(b"\r\n\r\n")
        if end < 0:
            return None
        head = bytes(buffer[:end]).lower()
        try:
            status = int(head[9:12])
        except ValueError:
            raise HttpError(f"not an HTTP answer: {head[:40]!r}") from None
        start = end + 4
        at = head.find(b"\r\ncontent-length:")
        if at >= 0:
            length = int(head[at + 17 : head.find(b"\r\n", at + 2) % (len(head) + 1)])
            if len(buffer) < start + length:
                return None
            body = bytes(buffer[start : start + length])
            del buffer[: start + length]
            return status, body
        if b"\r\ntransfer-encoding: chunked" not in head:
            raise HttpError("an answer without Content-Length or chunks")
        parts, at = [], start
        while True:
            line_end = buffer.find(b"\r\n", at)
            if line_end < 0:
                return None
            size = int(bytes(buffer[at:line_end]).split(b";")[0], 16)
            if len(buffer) < line_end + 2 + size + 2:
                return None
            if size == 0:
                del buffer[: line_end + 4]
                return status, b"".join(parts)
            parts.append(bytes(buffer[line_end + 2 : line_end + 2 + size]))
            at = line_end + 2 + size + 2

    async def request(self, data: bytes) -> tuple[int, bytes]:
        self.waiter = asyncio.get_running_loop().create_future()
        self.transport.write(data)
        return await self.waiter


class Client:
    """A pool of keep-alive connections of one trader and its prepared signing key."""

    def __init__(self, base: str, key: str, secret: str) -> None:
        host, _, port = base.removeprefix("http://").partition(":")
        self.host, self.port = host, int(port or 80)
        self.key = key
        seed = base64.b64decode(secret)[:32]
        if SigningKey is not None:  # libsodium: the same signatures in about half the time
            key_of_nacl = SigningKey(seed)
            self.sign = lambda message: key_of_nacl.sign(message).signature
        else:
            self.sign = Ed25519PrivateKey.from_private_bytes(seed).sign
        self.idle: list[Connection] = []
        self.all: list[Connection] = []

    async def call(self, method: str, path: str, instruction: str, params: dict) -> tuple:
        """(HTTP status, body bytes) of one signed request (its own fresh signature)."""
        timestamp = int(time.time() * 1000)
        message = signing_string(instruction, params, timestamp, 5000)
        signature = base64.b64encode(self.sign(message.encode())).decode()
        body = json.dumps(params, separators=(",", ":")).encode()
        data = (
            f"{method} {path} HTTP/1.1\r\nHost: {self.host}\r\n"
            f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n"
            f"X-API-Key: {self.key}\r\nX-Signature: {signature}\r\n"
            f"X-Timestamp: {timestamp}\r\nX-Window: 5000\r\n\r\n"
        ).encode() + body
        while self.idle:
            conn = self.idle.pop()
            if conn.closed:
                continue
            if time.monotonic() - conn.used < IDLE_REUSE:
                break
            conn.transport.close()  # the server may be closing it (its keep-alive timeout)
        else:
            _, conn = await asyncio.get_running_loop().create_connection(
                Connection, self.host, self.port
            )
            self.all.append(conn)
        answer = await conn.request(data)
        conn.used = time.monotonic()
        self.idle.append(conn)
        return answer

    def close(self) -> None:
        for conn in self.all:
            if conn.transport is not None:
                conn.transport.close()


def slow_by_tenth(answered: list[tuple[float, float]], p99: float | None) -> list[int]:
    counts = [0] * 10
    if p99 is not None:
        for at, ms in answered:
            if ms > p99:
                counts[int(at * 10) % 10] += 1
    return counts


async def signed(client, method, path, instruction, params, stats, start):  # noqa: ANN001, ANN201
    """(body or None, milliseconds since `start`: the request's scheduled time)."""
    try:
        status, raw = await asyncio.wait_for(client.call(method, path, instruction, params), 15)
        body = json.loads(raw)
        ms = (time.perf_counter() - start) * 1000
        if status != 200:
            code = body.get("code", str(status)) if isinstance(body, dict) else status
            stats.error(str(code))
            return None, ms
        return body, ms
    except (HttpError, OSError, TimeoutError, ValueError) as exc:
        stats.error(type(exc).__name__)
        return None, (time.perf_counter() - start) * 1000


async def trader(args, base, key, secret, symbol, rate, until, stats, seed):  # noqa: ANN001, ANN201
    """Places and cancels at `rate` until `until`; what was due in the first --warmup
    seconds is not counted in `stats`."""
    rng = random.Random(seed)
    warm = Stats()  # the warm-up's figures, left out
    resting: list[str] = []
    inflight = asyncio.Semaphore(args.inflight)
    tasks = set()
    client = Client(base, key, secret)
    try:

        async def place(due: float) -> None:
            async with inflight:
                side = rng.choice(("Bid", "Ask"))
                cross = rng.random() < args.cross
                # Resting orders sit away from the middle; a crossing one trades with them.
                offset = rng.randint(1, 50) * (1 if side == "Ask" else -1)
                if cross:
                    offset = -offset // 10 or (-1 if side == "Ask" else 1)
                price = 10000 + offset
                params = {
                    "symbol": symbol,
                    "side": side,
                    "orderType": "Limit",
                    "price": f"{price // 100}.{price % 100:02d}",
                    "quantity": f"0.{rng.randint(1, 99):02d}",
                    "timeInForce": "IOC" if cross else "GTC",
                }
                counted = stats if due >= measure_from else warm
                body, ms = await signed(
                    client, "POST", "/api/v1/order", "orderExecute", params, counted, due
                )
                counted.place_ms.append(ms)
                counted.answered.append((time.time(), ms))
                if body is not None:
                    counted.placed += 1
                    if body.get("status") == "New":
                        resting.append(body["id"])

        async def cancel(order_id: str, due: float) -> None:
            async with inflight:
                params = {"orderId": order_id, "symbol": symbol}
                counted = stats if due >= measure_from else warm
                body, ms = await signed(
                    client, "DELETE", "/api/v1/order", "orderCancel", params, counted, due
                )
                counted.cancel_ms.append(ms)
                counted.answered.append((time.time(), ms))
                if body is not None:
                    counted.cancelled += 1

        start = time.perf_counter()
        measure_from = start + args.warmup
        i = 0
        while time.monotonic() < until:
            due = start + i / rate
            delay = due - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            i += 1
            if len(resting) > args.keep and rng.random() < args.cancel:
                job = cancel(resting.pop(0), due)
            else:
                job = place(due)
            task = asyncio.ensure_future(job)
            tasks.add(task)
            task.add_done_callback(tasks.discard)
        if tasks:
            await asyncio.wait(tasks, timeout=20)
        late = list(tasks)
        for task in late:  # still unanswered: counted, then given up
            task.cancel()
            stats.error("unanswered")
        await asyncio.gather(*late, return_exceptions=True)
    finally:
        client.close()


class Watcher(asyncio.Protocol):
    """A minimal WebSocket client (RFC 6455) for the subscribers: 1,000 of them share the
    bench's 2 cores with the server, so a frame costs little more than its header. Every
    data frame of a stream is counted; a sampled socket (`measure`) also parses each frame's
    JSON and records its lag: the time the bytes arrived minus the event time "E"."""

    def __init__(self, host: str, path: str, symbol: str, stats: Stats, measure: bool) -> None:
        self.key = base64.b64encode(os.urandom(16)).decode()
        self.request = (
            f"GET {path} HTTP/1.1\r\nHost: {host}\r\nUpgrade: websocket\r\n"
            f"Connection: Upgrade\r\nSec-WebSocket-Key: {self.key}\r\n"
            "Sec-WebSocket-Version: 13\r\n\r\n"
        ).encode()
        self.subscribe = json.dumps(
            {"method": "SUBSCRIBE", "params": [f"depth.{symbol}", f"trade.{symbol}"]}
        ).encode()
        self.stats, self.measure = stats, measure
        self.transport: asyncio.Transport | None = None
        self.buffer = b""
        self.upgraded = False
        self.closing = False  # the bench is done with it
        self.done = asyncio.get_running_loop().create_future()

    def connection_made(self, transport: asyncio.Transport) -> None:
        self.transport = transport
        transport.write(self.request)

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.done.done():  # closed by the server or the network
            self.stats.ws_errors += not self.closing
            self.done.set_result(False)

    def send(self, opcode: int, payload: bytes) -> None:
        """A client frame: masked, as the RFC requires."""
        mask = os.urandom(4)
        masked = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
        n = len(payload)
        if n < 126:
            header = bytes((0x80 | opcode, 0x80 | n))
        else:
            header = bytes((0x80 | opcode, 0x80 | 126)) + n.to_bytes(2, "big")
        self.transport.write(header + mask + masked)

    def data_received(self, data: bytes) -> None:
        now_us = time.time() * 1_000_000
        buffer = self.buffer + data if self.buffer else data
        if not self.upgraded:
            head, sep, rest = buffer.partition(b"\r\n\r\n")
            if not sep:
                self.buffer = buffer
                return
            accept = hashlib.sha1((self.key + WS_GUID).encode()).digest()
            if not head.startswith(b"HTTP/1.1 101") or base64.b64encode(accept) not in head:
                self.fail()
                return
            self.upgraded = True
            self.send(0x1, self.subscribe)
            self.stats.ws_connected += 1
            buffer = rest
        stats, measure = self.stats, self.measure
        i, end = 0, len(buffer)
        while end - i >= 2:
            opcode, n = buffer[i] & 0x0F, buffer[i + 1]
            if n & 0x80:  # a server never masks
                self.fail()
                return
            start = i + 2
            if n == 126:
                n, start = int.from_bytes(buffer[i + 2 : i + 4], "big"), i + 4
            elif n == 127:
                n, start = int.from_bytes(buffer[i + 2 : i + 10], "big"), i + 10
            if start + n > end:
                break
            i = start + n
            if opcode == 0x1:
                if measure:
                    event = (json.loads(buffer[start:i]).get("data") or {}).get("E")
                    if event:
                        stats.ws_messages += 1
                        stats.lag_ms.append((now_us - event) / 1000)
                elif buffer.startswith(b'{"stream"', start):
                    stats.ws_messages += 1
            elif opcode == 0x9:
                self.send(0xA, buffer[start:i])  # pong
            elif opcode == 0x8:
                self.fail()
                return
        self.buffer = buffer[i:]

    def fail(self) -> None:
        self.stats.ws_errors += 1
        self.transport.abort()
        if not self.done.done():
            self.done.set_result(False)


WS_GUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"


async def watcher(ws_url, symbol, until, stats, measure: bool) -> None:  # noqa: ANN001
    url = urlsplit(ws_url)
    loop = asyncio.get_running_loop()
    try:
        transport, protocol = await asyncio.wait_for(
            loop.create_connection(
                lambda: Watcher(url.netloc, url.path, symbol, stats, measure),
                url.hostname,
                url.port,
            ),
            30,
        )
    except (OSError, TimeoutError):
        stats.ws_errors += 1
        return
    try:
        await asyncio.wait_for(asyncio.shield(protocol.done), max(0.1, until - time.monotonic()))
    except TimeoutError:
        pass
    protocol.closing = True
    transport.abort()


async def run(args: argparse.Namespace, base: str, keys: list[tuple[str, str]]) -> Stats:
    stats = Stats()
    ws_url = base.replace("http", "ws", 1) + "/ws"
    begin = time.monotonic()
    ws_until = begin + args.warmup + args.duration + args.ws_warmup + 3
    watchers = []
    for i in range(args.ws):  # connect in waves so daphne is not flooded at once
        watchers.append(
            asyncio.ensure_future(
                watcher(ws_url, args.symbols[0], ws_until, stats, i % args.ws_sample == 0)
            )
        )
        if i % 50 == 49:
            await asyncio.sleep(0.2)
    await asyncio.sleep(args.ws_warmup if args.ws else 0)
    until = time.monotonic() + args.warmup + args.duration
    measured: dict = {}

    async def measure() -> None:  # the cores used from the end of the warm-up on
        await asyncio.sleep(args.warmup)
        measured["cpu"], measured["start"] = cpu_by_role(), time.monotonic()

    per_client = args.rate / len(keys)
    await asyncio.gather(
        measure(),
        *(
            trader(
                args,
                base,
                key,
                secret,
                args.symbols[n % len(args.symbols)],
                per_client,
                until,
                stats,
                n,
            )  # fmt: skip
            for n, (key, secret) in enumerate(keys)
        ),
    )
    stats.elapsed = time.monotonic() - measured["start"]
    stats.cpu = cores_busy(measured["cpu"], cpu_by_role(), stats.elapsed)
    await asyncio.gather(*watchers, return_exceptions=True)
    return stats


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--url", help="attach to a running topology (http://127.0.0.1:8000)")
    p.add_argument("--rate", type=float, default=200, help="orders per second, all clients")
    p.add_argument("--duration", type=float, default=20, help="seconds of load, measured")
    p.add_argument(
        "--warmup",
        type=float,
        default=2,
        help="seconds of load at --rate before the measured --duration (connections, caches)",
    )
    p.add_argument(
        "--trace",
        help="write each measured request's answer time (Unix seconds) and latency (ms) here",
    )
    p.add_argument("--clients", type=int, default=8, help="signed trading clients (K)")
    p.add_argument("--ws", type=int, default=50, help="websocket subscribers (M)")
    p.add_argument("--ws-sample", type=int, default=1, help="measure lag on every Nth socket")
    p.add_argument("--ws-warmup", type=float, default=3, help="seconds to connect sockets")
    p.add_argument("--inflight", type=int, default=64, help="requests in flight per client")
    p.add_argument("--cancel", type=float, default=0.5, help="share of steps that cancel")
    p.add_argument("--cross", type=float, default=0.1, help="share of orders that trade")
    p.add_argument("--keep", type=int, default=20, help="resting orders a client keeps")
    p.add_argument(
        "--symbols",
        default="SOL_USDC",
        help="markets with tick 0.01 (clients take them in turn; sockets watch the first)",
    )
    p.add_argument("--web-workers", type=int, default=2, help="uvicorn worker processes")
    p.add_argument("--shards", default="", help='ENGINE_SHARDS, e.g. "engine-sol=SOL_USDC"')
    p.add_argument(
        "--database-url",
        default=os.environ.get("BENCH_DATABASE_URL", "postgres://postgres@127.0.0.1:5432/bench"),
    )
    p.add_argument(
        "--keep-database",
        action="store_true",
        help="reuse the database of earlier runs (default: dropped and created anew)",
    )
    p.add_argument("--redis-url", default=os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0"))
    p.add_argument(
        "--own-redis",
        action="store_true",
        help="start a redis-server of this run on a free port (with this process's niceness)",
    )
    args = p.parse_args()
    args.symbols = [x.strip() for x in args.symbols.split(",") if x.strip()]
    asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())  # the clients' CPU share is ours
    assert args.duration <= 600 and args.ws <= 5000 and args.rate <= 20000, "bounded runs only"

    redis = None
    if args.own_redis:
        redis_port = free_port()
        redis = subprocess.Popen(
            ["redis-server", "--port", str(redis_port), "--bind", "127.0.0.1", "--save", ""],
            stdout=subprocess.DEVNULL,
        )
        args.redis_url = f"redis://127.0.0.1:{redis_port}/0"
        time.sleep(0.5)
    env = {
        **os.environ,
        "DATABASE_URL": args.database_url,
        "REDIS_URL": args.redis_url,
        "CHANNEL_PREFIX": f"bench{os.getpid()}",
        "RATE_LIMIT_PER_KEY": "",
        "RATE_LIMIT_PER_IP": "",
        "DEMO_MARKET_MAKERS": "0",
        "DJANGO_SETTINGS_MODULE": "exchange.settings",
    }
    topology = None
    log = ROOT / "var" / "bench-load.log"
    log.parent.mkdir(exist_ok=True)
    try:
        if args.url:
            base = args.url.rstrip("/")
        else:
            ensure_database(args.database_url, fresh=not args.keep_database)
            port = free_port()
            base = f"http://127.0.0.1:{port}"
            topology = start_topology(args, env, port, log)
            asyncio.run(wait_up(base, 120, topology))
        keys = create_accounts(args.clients, args.symbols, env)
        stats = asyncio.run(run(args, base, keys))
    finally:
        if topology is not None and topology.poll() is None:
            os.killpg(topology.pid, signal.SIGINT)
            try:
                topology.wait(30)
            except subprocess.TimeoutExpired:
                os.killpg(topology.pid, signal.SIGKILL)
        if redis is not None:
            redis.terminate()
            redis.wait(10)
    latencies = stats.place_ms + stats.cancel_ms
    if args.trace:
        with open(args.trace, "w") as out:
            out.writelines(f"{at:.4f} {ms:.2f}\n" for at, ms in sorted(stats.answered))
    print(
        json.dumps(
            {
                "target_orders_per_s": args.rate,
                "orders_per_s": round(stats.placed / stats.elapsed, 1),
                "cancels_per_s": round(stats.cancelled / stats.elapsed, 1),
                # Acknowledged placements and cancels together, per second.
                "acked_per_s": round((stats.placed + stats.cancelled) / stats.elapsed, 1),
                "orders": stats.placed,
                "cancels": stats.cancelled,
                "latency_ms": {
                    "p50": pct(latencies, 50),
                    "p99": pct(latencies, 99),
                    "max": round(max(latencies), 2) if latencies else None,
                    "place_p99": pct(stats.place_ms, 99),
                    "cancel_p99": pct(stats.cancel_ms, 99),
                    "mean": round(statistics.fmean(latencies), 2) if latencies else None,
                    # The requests slower than p99, by the tenth of the wall-clock second
                    # they were answered in: a stall once a second shows as a peak.
                    "over_p99_by_tenth": slow_by_tenth(stats.answered, pct(latencies, 99)),
                },
                "ws": {
                    "subscribers": args.ws,
                    "connected": stats.ws_connected,
                    "messages": stats.ws_messages,
                    "lag_p50_ms": pct(stats.lag_ms, 50),
                    "lag_p99_ms": pct(stats.lag_ms, 99),
                    "errors": stats.ws_errors,
                },
                "errors": stats.errors,
                "clients": args.clients,
                "web_workers": args.web_workers,
                "shards": args.shards or None,
                "duration_s": round(stats.elapsed, 1),
                "warmup_s": args.warmup,
                "own_redis": args.own_redis,
                "nice": os.nice(0),
                # Cores busy per role during the load (2 = the whole machine here).
                "cores_busy": stats.cpu,
            }
        )
    )


if __name__ == "__main__":
    main()
