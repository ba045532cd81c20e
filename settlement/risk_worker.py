"""The liquidation/risk worker of the production topology (`manage.py riskworker`).

Each second the price tick (`services.update_prices`: every asset's index, every perp's
premium sample and mark, the price klines), and after each tick the engine's liquidation
scan (`{"op": "liquidate"}`) against the new marks.

Celery beat used to run both as two one-second tasks, each a trip through the broker, the
worker's pool and the result backend with four log lines, and in no set order: a scan could
run just before the tick that moved the mark, a second late. Here the tick runs on a fixed
rate on one thread (a tick that overruns skips the seconds it missed rather than bunching
them), and the scan on another, woken after each tick, failed or not: while the engine is
down or slow, the marks go on moving, and the scans that could not run fold into one with
the latest marks. Celery keeps the jobs of minutes and hours. With RISK_WORKER set
(the Procfile and docker-compose set it) beat leaves these two jobs out; the embedded
default still runs them in its PeriodicJobs.
"""

import logging
import threading
import time

from django.db import close_old_connections, connection

from accounts.errors import ExchangeError

log = logging.getLogger(__name__)
REMIND_SECONDS = 60.0  # a failure that lasts is logged again this often, with its count
JOIN_SECONDS = 5.0  # at stop, how long to wait for a scan under way (the engine may be down)


class RiskWorker:
    def __init__(self, interval: float = 1.0) -> None:
        if not interval > 0:
            raise ValueError(f"the risk worker's interval must be positive, not {interval}")
        self.interval = interval
        self.stopped = threading.Event()
        self._due = threading.Event()  # a tick came (or failed) since the last scan began
        self.ticks = self.scans = 0
        # part -> [error being reported, failures since, when last logged], until it clears
        self._failing: dict[str, list] = {}

    # ------------------------------------------------------------------ one step each

    def tick(self) -> bool:
        """One price tick. False when it failed (logged)."""
        from settlement import services

        if not connection.in_atomic_block:  # (a test's transaction is left alone)
            close_old_connections()  # a connection the database dropped is opened anew
        if self._attempt("price tick", services.update_prices) is None:
            return False
        self.ticks += 1
        return True

    def scan(self) -> dict | None:
        """One liquidation scan in the engine; its outcome, or None when it failed."""
        outcome = self._attempt("liquidation scan", _liquidate)
        if outcome is not None:
            self.scans += 1
        return outcome

    # ------------------------------------------------------------------ the loops

    def run(self) -> None:
        """Tick and scan until stop(); the scan's thread is joined before returning."""
        scanner = threading.Thread(target=self._scans, name="liquidation-scans", daemon=True)
        scanner.start()
        try:
            self._ticks()
        finally:
            self.stop()  # (also when the ticks ended by an error: the scanner stops too)
            scanner.join(JOIN_SECONDS)  # a scan waiting on a stopped engine is left behind

    def stop(self, *_: object) -> None:
        self.stopped.set()
        self._due.set()

    def _ticks(self) -> None:
        due = time.monotonic()
        while not self.stopped.is_set():
            self.tick()
            # The scan follows even a failed tick: positions and balances move without the
            # marks, and what made the tick fail (say the cache, after the marks were
            # written) need not stop liquidations.
            self._due.set()
            now = time.monotonic()
            due += self.interval
            if due < now:  # overran: the next whole interval from the schedule
                due += (now - due) // self.interval * self.interval + self.interval
            self.stopped.wait(due - now)

    def _scans(self) -> None:
        while True:
            self._due.wait()
            if self.stopped.is_set():
                return
            self._due.clear()
            self.scan()

    # ------------------------------------------------------------------ reporting

    def _attempt(self, part: str, step):  # noqa: ANN001, ANN202
        """step(): what it returns, or None when it raised (logged as the part's failure)."""
        try:
            done = step()
        except Exception as exc:  # noqa: BLE001
            self._failed(part, exc)
            return None
        self._recovered(part)
        return done

    def _failed(self, part: str, exc: Exception) -> None:
        """A failure is logged when it starts or changes, and while it lasts every
        REMIND_SECONDS with its count; not once a second."""
        text = f"{exc.code}: {exc.message}" if isinstance(exc, ExchangeError) else repr(exc)
        now = time.monotonic()
        state = self._failing.get(part)
        if state is None or state[0] != text:
            self._failing[part] = [text, 1, now]
            log.error("risk worker: %s failed: %s", part, text, exc_info=exc)
            return
        state[1] += 1
        if now - state[2] >= REMIND_SECONDS:
            state[2] = now
            log.error("risk worker: %s still failing (%s times): %s", part, state[1], text)

    def _recovered(self, part: str) -> None:
        state = self._failing.pop(part, None)
        if state is not None:
            log.warning("risk worker: %s works again after %s failures", part, state[1])


def _liquidate() -> dict:
    from settlement.tasks import liquidate  # the beat job's own step, called in this process

    outcome = liquidate()
    if any(outcome[k] for k in ("steps", "backstops", "released", "writtenOff")):
        log.info("risk worker: liquidation %s", outcome)
    return outcome
