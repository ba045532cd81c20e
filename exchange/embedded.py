"""The embedded default's stand-in for Celery beat and worker: one thread that runs the
beat schedule's tasks in-process when they are due. Production runs real beat and workers
against Redis instead (see README)."""

import logging
import threading

from celery import Celery
from celery.schedules import maybe_schedule

log = logging.getLogger(__name__)


class PeriodicJobs(threading.Thread):
    def __init__(self, app: Celery, schedule: dict) -> None:
        super().__init__(name="periodic-jobs", daemon=True)
        self.app = app
        app.loader.import_default_modules()  # every app's tasks.py (autodiscovery)
        self.entries = {
            name: (entry["task"], maybe_schedule(entry["schedule"], app=app), entry)
            for name, entry in schedule.items()
        }
        self.stopped = threading.Event()

    def run(self) -> None:
        started = self.app.now()
        last_run = dict.fromkeys(self.entries, started)
        while not self.stopped.is_set():
            wait = 1.0
            for name, (task_name, schedule, entry) in self.entries.items():
                due, next_in = schedule.is_due(last_run[name])
                if due:
                    last_run[name] = self.app.now()
                    self.run_task(name, task_name, entry)
                wait = min(wait, max(next_in, 0.05))
            self.stopped.wait(wait)

    def run_task(self, name: str, task_name: str, entry: dict) -> None:
        task = self.app.tasks.get(task_name)
        if task is None:
            log.error("periodic job %s: no task %s", name, task_name)
            return
        result = task.apply(args=entry.get("args", ()), kwargs=entry.get("kwargs", {}))
        if result.failed():
            log.error("periodic job %s failed: %s", name, result.traceback)

    def stop(self) -> None:
        self.stopped.set()
