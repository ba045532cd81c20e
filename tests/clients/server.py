"""The real server as a subprocess (`manage.py serve --no-jobs`) on the test database.

Embedded default (SQLite): one process, the engine a thread of it. With REDIS_URL: `serve`
plus a `runworker` engine process, on a Redis database and channel prefix of their own (the
cache's key prefix is fixed in settings, so a database of its own keeps this server's depth
snapshots, replay marks and rate counters apart from any other server on the same Redis).
"""

import io
import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from contextlib import contextmanager
from pathlib import Path

from django.conf import settings
from django.core.management import call_command
from django.db import connection

ROOT = Path(__file__).resolve().parents[2]
STARTUP_SECONDS = 60


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def database_url() -> str:
    db = connection.settings_dict
    if connection.vendor == "sqlite":
        return f"sqlite:///{Path(db['NAME']).resolve()}"
    if connection.vendor == "postgresql":
        password = f":{db['PASSWORD']}" if db.get("PASSWORD") else ""
        return f"postgres://{db['USER']}{password}@{db['HOST']}:{db['PORT']}/{db['NAME']}"
    raise RuntimeError(f"no subprocess server for {connection.vendor}")


def _env(tag: str) -> dict:
    env = {**os.environ, "DATABASE_URL": database_url(), "LOG_LEVEL": "WARNING"}
    env.pop("ENGINE_CLIENT", None)
    if settings.REDIS_URL:
        base, _, _db = settings.REDIS_URL.rstrip("/").rpartition("/")
        base = base if _db.isdigit() else settings.REDIS_URL.rstrip("/")
        env["REDIS_URL"] = f"{base}/{1 + os.getpid() % 15}"
        env["CHANNEL_PREFIX"] = tag
        env["ENGINE_CHANNEL"] = f"engine-{tag}"
    else:
        env.pop("REDIS_URL", None)
    return env


def _ready(url: str) -> bool:
    try:
        with urllib.request.urlopen(f"{url}/api/v1/status", timeout=1) as response:
            return response.status == 200
    except OSError:
        return False


# The production topology's web server (Procfile `web`): its WebSocket frames are written to
# the socket directly (exchange/streams/consumer.py), daphne's go through the ASGI send.
UVICORN = (
    "-m", "uvicorn", "exchange.asgi:application", "--host", "127.0.0.1", "--ws", "websockets",
    "--ws-per-message-deflate", "false", "--lifespan", "off", "--no-access-log",
)  # fmt: skip


@contextmanager
def running_exchange(log_dir: Path, server: str = "daphne"):
    """Serve the exchange on a free port with daphne (`manage.py serve`) or uvicorn; yield its
    base URL (http://127.0.0.1:<port>)."""
    port = free_port()
    tag = f"ccxt{os.getpid()}x{port}"
    env = _env(tag)
    log = (log_dir / "server.log").open("ab")
    processes = []

    def start(*args: str) -> None:
        processes.append(
            subprocess.Popen(
                [sys.executable, *(args if args[0] == "-m" else ("manage.py", *args))],
                cwd=ROOT,
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        )

    url = f"http://127.0.0.1:{port}"
    try:
        if "REDIS_URL" in env:
            start("runworker", env["ENGINE_CHANNEL"])
        if server == "uvicorn":
            start(*UVICORN, "--port", str(port))
        else:
            start("serve", "--no-jobs", "--host", "127.0.0.1", "--port", str(port))
        deadline = time.monotonic() + STARTUP_SECONDS
        while not _ready(url):
            dead = [p for p in processes if p.poll() is not None]
            if dead or time.monotonic() > deadline:
                log.flush()
                raise RuntimeError(
                    f"the server did not start: {(log_dir / 'server.log').read_text()[-3000:]}"
                )
            time.sleep(0.1)
        yield url
    finally:
        for p in processes:
            if p.poll() is None:
                os.killpg(p.pid, signal.SIGTERM)
        for p in processes:
            try:
                p.wait(15)
            except subprocess.TimeoutExpired:
                os.killpg(p.pid, signal.SIGKILL)
                p.wait()
        log.close()


def demo_account(name: str, **deposits: str) -> dict:
    """`manage.py demo_account NAME --deposit SYMBOL=QTY ...`: {"apiKey", "apiSecret"}."""
    out = io.StringIO()
    args = [f"--deposit={symbol}={qty}" for symbol, qty in deposits.items()]
    call_command("demo_account", name, *args, stdout=out)
    return json.loads(out.getvalue())
