"""Order ids of an engine worker that no other engine shard hands out.

The engine gives a new order its id when it accepts it (the book, the answer and the
batch's rows all use it before the batch is written), so the orders table has no id
default. Each shard is a process of its own: on PostgreSQL ids come in blocks from a
sequence of their own (`trading_order_engine_id`; `nextval` never gives two callers the
same value). A worker starting up creates it if missing and moves it past every id in the
table, under an advisory lock against another shard starting at the same time. The
embedded SQLite runs one engine: max(id) + 1, counted in the process.
"""

from django.db import connection, transaction

BLOCK = 1000
LOCK = 0x6F72646572  # pg_advisory_xact_lock key: "order"
SEQUENCE = "trading_order_engine_id"


class OrderIds:
    def __init__(self, table: str = "trading_order") -> None:
        self.table = table
        self.current = 0
        self.free: list[int] = []
        self.counted = False  # SQLite: counted here (connection.vendor costs per order)

    def start(self) -> None:
        """Drop any block held (the books are rebuilt) and take the first id."""
        self.free = []
        self.counted = connection.vendor != "postgresql"
        if self.counted:
            with connection.cursor() as cursor:
                cursor.execute(f"SELECT COALESCE(MAX(id), 0) FROM {self.table}")  # noqa: S608
                self.current = cursor.fetchone()[0] + 1
            return
        with transaction.atomic(), connection.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_xact_lock(%s)", [LOCK])
            cursor.execute(f"CREATE SEQUENCE IF NOT EXISTS {SEQUENCE}")
            cursor.execute(
                f"SELECT setval('{SEQUENCE}', m) FROM "
                f"(SELECT MAX(id) AS m FROM {self.table}) t, {SEQUENCE} s "  # noqa: S608
                "WHERE m >= s.last_value"
            )
        self.current = self._take()

    def advance(self) -> None:
        """The current id was used: the next one."""
        if self.counted:
            self.current += 1  # one engine, one writer
            return
        self.current = self._take()

    def _take(self) -> int:
        if not self.free:
            with connection.cursor() as cursor:
                cursor.execute(f"SELECT nextval('{SEQUENCE}') FROM generate_series(1, %s)", [BLOCK])
                self.free = sorted((row[0] for row in cursor.fetchall()), reverse=True)
        return self.free.pop()
