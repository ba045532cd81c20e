"""Serve the exchange over ASGI (HTTP and WebSockets) with daphne.

On the embedded default (no REDIS_URL) the periodic jobs run inside this process; with
REDIS_URL set they belong to Celery beat and workers, started separately.
"""

from django.conf import settings
from django.core.management.base import BaseCommand


class Command(BaseCommand):
    help = "Serve the exchange (daphne); on the embedded default also run the periodic jobs."

    def add_arguments(self, parser) -> None:  # noqa: ANN001
        parser.add_argument("--host", default="127.0.0.1")
        parser.add_argument("--port", type=int, default=8000)
        parser.add_argument("--no-jobs", action="store_true", help="do not run periodic jobs")

    def handle(self, *args: object, **opts: object) -> None:
        from daphne.cli import CommandLineInterface

        from exchange.celery import app
        from exchange.embedded import PeriodicJobs

        if settings.ENGINE_CLIENT.endswith("LocalEngineClient"):
            from trading.services import engine_client

            engine_client().call([])  # start the engine thread: rebuild the books now
            self.stdout.write("embedded: the engine runs in this process")
        if not settings.REDIS_URL and not opts["no_jobs"]:
            # Every job, the risk worker's too (there is no risk worker here).
            PeriodicJobs(app, {**settings.CELERY_BEAT_SCHEDULE, **settings.RISK_JOBS}).start()
            self.stdout.write("embedded: periodic jobs run in this process")
        self.stdout.write(f"serving http://{opts['host']}:{opts['port']}/")
        CommandLineInterface().run(
            # Backpack pings every 60 s and drops a client silent for 120 s.
            [
                "-b",
                str(opts["host"]),
                "-p",
                str(opts["port"]),
                "--ping-interval",
                "60",
                "--ping-timeout",
                "120",
                "exchange.asgi:application",
            ]
        )
