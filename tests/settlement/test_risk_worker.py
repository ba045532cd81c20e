"""The liquidation/risk worker (settlement/risk_worker.py, `manage.py riskworker`): each
second the price tick, then the engine's liquidation scan against the new marks; in the
production topology in place of Celery's two one-second jobs."""

import importlib.machinery
import importlib.util
import json
import logging
import signal
import subprocess
import sys
import threading
import time
from decimal import Decimal as D
from pathlib import Path

import pytest

from settlement.models import PriceSetting
from settlement.risk_worker import RiskWorker
from settlement.selectors import mark_prices
from tests.builders import user_account
from tests.processes import (
    REAL_SERVICES,
    kill,
    marks_moving,
    start_risk_worker,
    start_worker,
    use_channel_engine,
)
from tests.settlement.test_liquidation import invariants, order, usdc_pool_half_used
from trading.models import Order

ROOT = Path(__file__).resolve().parents[2]
PERP = "SOL_USDC_PERP"


@pytest.mark.django_db
def test_ticks_move_the_mark_and_the_scan_after_each_liquidates_once_the_mark_is_low():
    sol = PriceSetting.objects.filter(asset_id="SOL")
    sol.update(manual_price=D("150"))
    usdc_pool_half_used()
    trader = user_account("trader", SOL="10")
    maker = user_account("maker", USDC="1000000")
    order(maker, "Ask", "150", "80")
    assert order(trader, "Bid", "150", "80")["status"] == "Filled"  # 10x long
    worker = RiskWorker()
    assert worker.tick() and mark_prices()[PERP] == D("150")
    assert worker.scan()["steps"] == 0  # healthy

    buyer = user_account("buyer", USDC="1000000")
    order(buyer, "Bid", "137", "200")
    sol.update(manual_price=D("137"))
    assert worker.scan()["steps"] == 0  # a scan without a tick sees the old mark
    marks = []
    while worker.ticks < 15:
        assert worker.tick()
        marks.append(mark_prices()[PERP])
        if worker.scan()["steps"]:
            break
    # The mark walks down at most 1% a tick; the account is liquidated on the book once
    # the mark has fallen far enough, by the scan that followed that tick.
    assert marks[0] == D("148.5") and len(marks) >= 5
    assert D("137") <= marks[-1] < D("142")
    assert Order.objects.filter(account=trader, system_order_type="LiquidatePositionOnBook")
    assert worker.scans == worker.ticks + 1
    invariants()


class Clocked(RiskWorker):
    """Ticks and scans recorded, the engine as slow as told."""

    def __init__(self, interval: float, scan_seconds: float) -> None:
        super().__init__(interval)
        self.scan_seconds = scan_seconds
        self.log: list[tuple[str, float, int]] = []  # (what, when, ticks before it)

    def tick(self) -> bool:
        self.ticks += 1
        self.log.append(("tick", time.monotonic(), self.ticks))
        return True

    def scan(self) -> dict:
        self.log.append(("scan", time.monotonic(), self.ticks))
        time.sleep(self.scan_seconds)
        self.scans += 1
        return {}


def run_for(worker: RiskWorker, seconds: float) -> None:
    thread = threading.Thread(target=worker.run)
    thread.start()
    time.sleep(seconds)
    worker.stop()
    thread.join(5)
    assert not thread.is_alive()


def test_ticks_keep_their_rate_and_each_scan_follows_a_tick():
    worker = Clocked(interval=0.05, scan_seconds=0)
    run_for(worker, 0.52)
    ticks = [at for what, at, _ in worker.log if what == "tick"]
    assert 9 <= len(ticks) <= 12
    gaps = [b - a for a, b in zip(ticks, ticks[1:], strict=False)]
    assert max(gaps) < 0.2 and abs(sum(gaps) / len(gaps) - 0.05) < 0.02
    scans = [seen for what, _, seen in worker.log if what == "scan"]
    assert scans and scans[0] >= 1  # never before the first tick
    assert 0 < worker.scans <= worker.ticks


def test_a_slow_engine_does_not_hold_up_the_price_ticks_and_missed_scans_fold_into_one():
    worker = Clocked(interval=0.05, scan_seconds=0.3)
    run_for(worker, 0.7)
    assert worker.ticks >= 10  # the marks went on moving every 0.05 s
    assert 2 <= worker.scans <= 3  # each scan took the latest marks, not one per tick
    seen = [seen for what, _, seen in worker.log if what == "scan"]
    assert seen[1] - seen[0] >= 4  # the ticks during a scan were folded into the next


def test_an_overrun_tick_skips_the_seconds_it_missed_instead_of_bunching_them():
    class Slow(Clocked):
        def tick(self) -> bool:
            done = super().tick()  # (logged as it begins)
            if self.ticks == 2:
                time.sleep(0.23)  # misses four 0.05 s slots
            return done

    worker = Slow(interval=0.05, scan_seconds=0)
    run_for(worker, 0.5)
    ticks = [at for what, at, _ in worker.log if what == "tick"]
    # Each tick in a slot of its own on the schedule: no burst of catching-up ticks after
    # the slow one (a tick woken late may be followed closely by one on time, not by more).
    slots = [round((at - ticks[0]) / 0.05) for at in ticks]
    assert len(set(slots)) == len(slots)
    assert len(ticks) <= 7  # 0.5 s, four slots of it missed


def test_an_error_out_of_the_ticks_stops_the_scans_too_and_a_bad_interval_is_refused():
    class Broken(Clocked):
        def tick(self) -> bool:
            super().tick()
            raise RuntimeError("a bug")

    worker = Broken(interval=0.05, scan_seconds=0)
    thread = threading.Thread(target=lambda: pytest.raises(RuntimeError, worker.run))
    thread.start()
    thread.join(5)
    assert not thread.is_alive() and worker.stopped.is_set()
    assert not [t for t in threading.enumerate() if t.name == "liquidation-scans"]
    for interval in (0, -1):
        with pytest.raises(ValueError, match="must be positive"):
            RiskWorker(interval=interval)


@pytest.mark.django_db
def test_a_failure_is_logged_when_it_starts_and_when_it_clears_not_every_second(
    monkeypatch, caplog
):
    from settlement import services

    worker = RiskWorker()
    real = services.update_prices

    def down(*args, **kwargs):  # noqa: ANN002, ANN003, ANN202
        raise ConnectionError("database unreachable")

    monkeypatch.setattr(services, "update_prices", down)
    with caplog.at_level(logging.WARNING, logger="settlement.risk_worker"):
        assert [worker.tick() for _ in range(3)] == [False] * 3
        monkeypatch.setattr(services, "update_prices", real)
        assert worker.tick()
    messages = [r.getMessage() for r in caplog.records]
    assert len(messages) == 2
    assert "price tick failed" in messages[0] and "database unreachable" in messages[0]
    assert messages[1] == "risk worker: price tick works again after 3 failures"
    assert worker.ticks == 1 and not worker.stopped.is_set()


def schedule(**env: str) -> list[str]:
    code = (
        "import django, json; django.setup(); from django.conf import settings; "
        "print(json.dumps(sorted(settings.CELERY_BEAT_SCHEDULE)))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code],
        cwd=ROOT,
        env={"DJANGO_SETTINGS_MODULE": "exchange.settings", "PATH": "/usr/bin:/bin", **env},
        capture_output=True,
        check=True,
        timeout=60,
    )
    return json.loads(out.stdout)


def test_beat_leaves_the_one_second_jobs_to_the_risk_worker_when_it_runs():
    alone = schedule()
    with_worker = schedule(RISK_WORKER="1")
    assert {"update-prices", "liquidate"} <= set(alone)
    assert set(alone) - set(with_worker) == {"update-prices", "liquidate"}


def test_run_prod_supervises_the_risk_worker_unless_beat_runs_its_jobs():
    loader = importlib.machinery.SourceFileLoader("run_prod", str(ROOT / "bin" / "run-prod"))
    module = importlib.util.module_from_spec(importlib.util.spec_from_loader("run_prod", loader))
    loader.exec_module(module)
    entries = module.procfile(ROOT / "Procfile")
    assert entries["risk"].endswith("python manage.py riskworker")
    env = {"ENGINE_CHANNEL": "engine", "RISK_WORKER": "1"}
    assert "risk" in [name for name, _, _ in module.plan(env, entries)]
    names = [name for name, _, _ in module.plan({**env, "RISK_WORKER": "0"}, entries)]
    assert "risk" not in names and {"worker", "beat"} <= set(names)


def test_the_riskworker_command_refuses_to_run_where_beat_runs_its_jobs():
    env = {"PATH": "/usr/bin:/bin", "RISK_WORKER": "0", "REDIS_URL": "redis://127.0.0.1:1/0"}
    out = subprocess.run(
        [sys.executable, "manage.py", "riskworker"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        timeout=60,
    )
    assert out.returncode != 0
    assert b"RISK_WORKER is not set, so Celery beat runs" in out.stderr


@REAL_SERVICES[0]
@REAL_SERVICES[1]
@REAL_SERVICES[2]
def test_the_riskworker_command_ticks_scans_through_a_real_engine_and_stops_on_sigterm(
    settings, tmp_path
):
    env = use_channel_engine(settings, settings.REDIS_URL, timeout=2)
    engine = start_worker(env, tmp_path / "engine.log")
    log = tmp_path / "risk.log"
    risk = start_risk_worker(env, log)
    try:
        moved = marks_moving()
        time.sleep(1)  # the engine worker answers the scans once it is up
        risk.send_signal(signal.SIGTERM)
        risk.wait(20)
    finally:
        kill(risk)
        kill(engine, signal.SIGTERM)
    assert moved
    text = log.read_text()
    assert risk.returncode == 0, text
    final = [line for line in text.splitlines() if "stopped after" in line]
    ticks, scans = (int(word) for word in final[0].replace(",", "").split() if word.isdigit())
    assert ticks >= 2 and 1 <= scans <= ticks, text
