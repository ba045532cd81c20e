"""The embedded scheduler knows every task of the beat schedule."""

from django.conf import settings

from exchange.celery import app
from exchange.embedded import PeriodicJobs


def test_every_scheduled_task_is_registered_for_the_embedded_scheduler():
    jobs = PeriodicJobs(app, settings.CELERY_BEAT_SCHEDULE)
    missing = [task for task, _, _ in jobs.entries.values() if task not in jobs.app.tasks]
    assert not missing
