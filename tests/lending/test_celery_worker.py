"""The interest job through a real Celery worker and the Redis broker."""

import os
import signal
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

from django.conf import settings as django_settings
from django.db import connection

from lending.models import Pool, RateHistory
from tests.processes import REAL_SERVICES

ROOT = Path(__file__).resolve().parents[2]

pytestmark = REAL_SERVICES


def test_the_accrual_task_runs_on_a_real_worker_through_the_broker(tmp_path):
    from exchange.celery import app
    from lending.tasks import accrue_interest

    queue = f"test-{os.getpid()}"
    db = connection.settings_dict
    env = {
        **os.environ,
        "DATABASE_URL": f"postgres://{db['USER']}@{db['HOST']}:{db['PORT']}/{db['NAME']}",
        "REDIS_URL": django_settings.REDIS_URL,
    }
    # Pools last accrued two hours ago: the worker must catch up two hours each.
    now = datetime.now(UTC).replace(minute=0, second=0, microsecond=0)
    Pool.objects.update(accrued_until=now - timedelta(hours=2))
    log = (tmp_path / "worker.log").open("wb")
    worker = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "celery",
            "-A",
            "exchange",
            "worker",
            "-Q",
            queue,
            "--concurrency",
            "1",
            "--pool",
            "solo",
            "-l",
            "info",
        ],
        cwd=ROOT,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    try:
        app.conf.broker_url = django_settings.REDIS_URL
        result = accrue_interest.apply_async(queue=queue)
        accrued = result.get(timeout=60)
    finally:
        os.killpg(worker.pid, signal.SIGTERM)
        worker.wait(30)
    expected = 2 * Pool.objects.count()
    assert accrued == expected
    assert RateHistory.objects.count() == expected
