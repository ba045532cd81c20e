"""`manage.py riskworker`: the production topology's liquidation/risk worker
(settlement/risk_worker.py). SIGTERM or Ctrl-C stops it after the step under way; a second
one stops it at once.

It runs only where beat leaves it the one-second jobs (RISK_WORKER set: both would run
them otherwise, and the mark, which moves at most 1% an update, would move twice as fast)
and against Redis (the engine workers it sends its scans to; the embedded default runs the
jobs in its own process)."""

import signal
import threading

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from settlement.risk_worker import RiskWorker


class Command(BaseCommand):
    help = "Each second: the price tick, then the engine's liquidation scan."

    def add_arguments(self, parser) -> None:  # noqa: ANN001
        parser.add_argument(
            "--interval", type=float, default=settings.RISK_TICK_SECONDS, help="seconds"
        )

    def handle(self, *args: object, **opts: object) -> None:
        if not settings.RISK_WORKER:
            raise CommandError(
                "RISK_WORKER is not set, so Celery beat runs the price tick and liquidation; "
                "set RISK_WORKER=1 for this process and beat (the Procfile does)"
            )
        if not settings.REDIS_URL:
            raise CommandError("the risk worker needs REDIS_URL (the engine workers' layer)")
        try:
            worker = RiskWorker(interval=opts["interval"])
        except ValueError as exc:
            raise CommandError(str(exc)) from exc
        # The handler only notes the signal (an Event's lock taken in a handler could be
        # the one the interrupted thread holds); the main thread stops the worker.
        asked: list[int] = []

        def note(signum: int, frame: object) -> None:
            asked.append(signum)
            signal.signal(signal.SIGTERM, signal.SIG_DFL)  # a second signal ends it now
            signal.signal(signal.SIGINT, signal.SIG_DFL)

        signal.signal(signal.SIGTERM, note)
        signal.signal(signal.SIGINT, note)
        runner = threading.Thread(target=worker.run, name="price-ticks")
        runner.start()
        self.stdout.write(f"risk worker: price tick and liquidation scan every {worker.interval} s")
        self.stdout.flush()
        while runner.is_alive() and not asked:
            runner.join(0.2)
        worker.stop()
        runner.join()
        self.stdout.write(f"risk worker: stopped after {worker.ticks} ticks, {worker.scans} scans")
        if not asked:
            raise CommandError("the risk worker's loop ended by itself (see the log)")
