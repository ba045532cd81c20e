"""`manage.py riskworker`: the production topology's liquidation/risk worker
(settlement/risk_worker.py). SIGTERM or Ctrl-C stops it after the step under way."""

import signal

from django.conf import settings
from django.core.management.base import BaseCommand

from settlement.risk_worker import RiskWorker


class Command(BaseCommand):
    help = "Each second: the price tick, then the engine's liquidation scan."

    def add_arguments(self, parser) -> None:  # noqa: ANN001
        parser.add_argument(
            "--interval", type=float, default=settings.RISK_TICK_SECONDS, help="seconds"
        )

    def handle(self, *args: object, **opts: object) -> None:
        worker = RiskWorker(interval=opts["interval"])
        signal.signal(signal.SIGTERM, worker.stop)
        signal.signal(signal.SIGINT, worker.stop)
        self.stdout.write(f"risk worker: price tick and liquidation scan every {worker.interval} s")
        self.stdout.flush()
        worker.run()
        self.stdout.write(f"risk worker: stopped after {worker.ticks} ticks, {worker.scans} scans")
