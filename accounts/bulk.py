"""Bulk SQL for hot paths (the engine's batches, interest accrual): rows go in without
per-row model overhead. PostgreSQL: COPY, and one UPDATE ... FROM unnest(arrays); the
embedded SQLite: executemany. Values must already be of the column's Python type.

`new_instance` and `row_reader` are the matching in-memory side: unsaved model instances
built without Model.__init__'s per-field work, and their values as rows."""

import json
import operator
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from functools import cache

import psycopg
from django.db import connection, models
from django.db.models.base import ModelState
from psycopg import generators, pq
from psycopg.waiting import Wait


@cache
def _defaults(model: type[models.Model]) -> tuple[dict, dict]:
    """Per attname: the fields' constant defaults, and the callables of the others."""
    constant, factories = {}, {}
    for f in model._meta.concrete_fields:
        if f.has_default() and callable(f.default):
            factories[f.attname] = f.default
        else:
            constant[f.attname] = f.get_default()
    return constant, factories


def new_instance(
    model: type[models.Model], related: dict[str, models.Model] | None = None, **values: object
) -> models.Model:
    """An unsaved instance as Model(**values) would make it (defaults for the fields not
    given), for the engine's per-order objects: `values` by attname (`market_id`, not
    `market`); `related` caches related instances (`{"market": m}`) so reading them costs
    no query. No pre_init/post_init signals are sent (none are connected to these models)."""
    obj = model.__new__(model)
    obj._state = state = ModelState()
    constant, factories = _defaults(model)
    attrs = obj.__dict__
    attrs.update(constant)
    for name, make in factories.items():
        attrs[name] = make()
    attrs.update(values)
    if related:
        state.fields_cache.update(related)
    return obj


@cache
def row_reader(model: type[models.Model], fields: tuple[str, ...]) -> Callable:
    """instance -> its values of `fields` as a tuple, for insert_rows/update_rows (JSON
    fields as JSON text)."""
    meta = model._meta
    attnames = [meta.get_field(n).attname if n != "pk" else meta.pk.attname for n in fields]
    get = operator.attrgetter(*attnames)
    if len(attnames) == 1:
        single = get
        get = lambda obj: (single(obj),)  # noqa: E731
    json_at = [
        i
        for i, n in enumerate(fields)
        if n != "pk" and isinstance(meta.get_field(n), models.JSONField)
    ]
    if not json_at:
        return get

    def read(obj: models.Model) -> tuple:
        values = list(get(obj))
        for i in json_at:
            value = values[i]
            values[i] = "{}" if value == {} else json.dumps(value)  # most are empty
        return tuple(values)

    return read


@cache
def _table(model: type[models.Model]) -> str:
    return connection.ops.quote_name(model._meta.db_table)


@cache
def _col(model: type[models.Model], name: str) -> str:
    if name == "pk":
        return connection.ops.quote_name(model._meta.pk.column)
    return connection.ops.quote_name(model._meta.get_field(name).column)


def allocate_ids(model: type[models.Model], count: int) -> list[int]:
    """Reserve `count` primary keys of an auto-id model, to insert rows that others refer
    to in the same batch. PostgreSQL draws them from the table's sequence; SQLite (one
    writer at a time: the transaction holds the database's write lock) continues after the
    largest id."""
    if count == 0:
        return []
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute(
                "SELECT nextval(pg_get_serial_sequence(%s, 'id')) FROM generate_series(1, %s)",
                [model._meta.db_table, count],
            )
            return [row[0] for row in cursor.fetchall()]
        cursor.execute(f"SELECT COALESCE(MAX(id), 0) FROM {_table(model)}")
        start = cursor.fetchone()[0] + 1
    return list(range(start, start + count))


class IdBlock:
    """Primary keys of an auto-id model for one long-lived writer (the engine), drawn from
    the table's sequence `size` at a time: the draw is a read, which waits for the
    connection's writes in flight, so it happens once per `size` ids rather than once per
    batch. Ids drawn and not used (a batch rolled back) are gaps, never reused. On SQLite
    (max(id) + 1, nothing to reserve ahead) each call draws just what it needs."""

    def __init__(self, model: type[models.Model], size: int = 4096) -> None:
        self.model = model
        self.size = size
        self.free: list[int] = []

    def __call__(self, count: int) -> list[int]:
        if connection.vendor != "postgresql":
            return allocate_ids(self.model, count)
        free = self.free
        if len(free) < count:
            free += allocate_ids(self.model, max(self.size, count))
        ids = free[:count]
        del free[:count]
        return ids


def _copy(cursor, table: str, columns: str, rows: list[Sequence]) -> None:  # noqa: ANN001
    with cursor.cursor.copy(f"COPY {table} ({columns}) FROM STDIN") as copy:
        for row in rows:
            copy.write_row(row)


# ------------------------------------------------------------------ deferred writes


class _Pending(list):
    """The deferred writes not yet sent, and whether a send is still running on the
    server (its results not read yet)."""

    in_flight = False
    failed: Exception | None = None


WAIT_R = Wait.R


@contextmanager
def deferred_writes() -> Iterator[None]:
    """On PostgreSQL, hold back the writes of insert_rows / update_rows / upsert_rows made
    in the block and send them together, without waiting: what is queued goes out at
    `send_ahead()` (when none is running on the server; the server works on it while the
    caller builds the next ones), with the next other statement (so every read sees the
    writes; one round trip with it) or at the end of the block (which must be inside the
    transaction that commits them). The results of a send are read before the next one.
    A write the server refuses raises there, and the transaction rolls back. The engine's
    batch writes this way: on a loaded machine each round trip costs more than the rows.
    Elsewhere: no change."""
    if (
        connection.vendor != "postgresql"
        or getattr(connection, "_deferred_writes", None) is not None
    ):
        yield
        return
    pending = _Pending()

    def send_first(execute, sql, params, many, context):  # noqa: ANN001, ANN202
        _drain(pending)
        if not pending or many:
            _send(pending)
            return execute(sql, params, many, context)
        # The pending writes and this statement in one round trip; its rows are the last
        # result set.
        cursor = context["cursor"].cursor
        sql = ";\n".join([*pending, cursor.mogrify(sql, params)])
        pending.clear()
        result = execute(sql, None, many, context)
        while cursor.nextset():
            pass
        return result

    connection._deferred_writes = pending
    try:
        with connection.execute_wrapper(send_first):
            yield
            _drain(pending)
            _send(pending)
    finally:
        connection._deferred_writes = None
        if pending.in_flight:  # the block raised: read what is left (the caller rolls back)
            try:
                _drain(pending)
            except Exception:  # noqa: BLE001, S110 - the block's own error propagates
                pass


def can_send_ahead() -> bool:
    """Inside deferred_writes (PostgreSQL): whether the server has run every write sent so
    far, a good moment to queue more and `send_ahead`. Elsewhere False: writes run as
    they are made, there is nothing to send ahead of."""
    pending = getattr(connection, "_deferred_writes", None)
    if pending is None:
        return False
    return _drain(pending, block=False)


def send_ahead() -> None:
    """Send what is queued (one round trip's worth of statements, not waited for), if the
    server has run what was sent before; else it waits for the next send."""
    pending = getattr(connection, "_deferred_writes", None)
    if pending and _drain(pending, block=False):
        _send_async(pending)


def commit_with_writes() -> None:
    """The last step of an outermost `transaction.atomic()` block with deferred_writes
    (PostgreSQL): what is still queued goes out with COMMIT, in one round trip instead of
    two; the block's own commit then has nothing left to do (psycopg sends no COMMIT for a
    connection whose transaction has ended). A refused write or commit raises here, inside
    the block, which rolls back. Elsewhere (no deferred writes, the block nested in another,
    e.g. a test's, or marked for rollback: set_rollback, or an error caught inside it)
    nothing is done: the block ends as usual."""
    pending = getattr(connection, "_deferred_writes", None)
    if (
        pending is None
        or len(connection.atomic_blocks) != 1
        or connection.savepoint_ids
        or connection.needs_rollback
    ):
        return
    _drain(pending)
    pending.append("COMMIT")
    _send(pending)


def _send(pending: list[str]) -> None:
    if not pending:
        return
    sql = ";\n".join(pending)
    pending.clear()
    # psycopg's own cursor: past the wrapper, no parameters; errors as Django's cursors
    # give them (a lost connection is seen).
    with connection.cursor() as cursor, connection.wrap_database_errors:
        cursor.cursor.execute(sql)


def _send_async(pending: _Pending) -> None:
    """Send the queued writes and return without waiting for the server to run them."""
    conn = connection.connection
    sql = ";\n".join(pending)
    pending.clear()
    with connection.wrap_database_errors:  # as Django's cursors: a lost connection is seen
        conn.pgconn.send_query(sql.encode(conn.info.encoding))
        pending.in_flight = True
        conn.wait(generators.send(conn.pgconn))


def _drain(pending: _Pending, *, block: bool = True) -> bool:
    """Read the results of the writes in flight (raising the first refusal of the
    server); without `block`, only as far as they have arrived. Whether none is in
    flight now."""
    if not pending.in_flight:
        return True
    with connection.wrap_database_errors:  # as Django's cursors: a lost connection is seen
        return _read_results(pending, block)


def _read_results(pending: _Pending, block: bool) -> bool:
    conn = connection.connection
    pgconn = conn.pgconn
    if not block:
        pgconn.consume_input()
    while True:  # one result per statement of the send, then None
        if pgconn.is_busy():
            if not block:
                return False
            while pgconn.is_busy():
                conn.wait(_readable(pgconn))
        result = pgconn.get_result()
        if result is None:
            break
        if pending.failed is None and result.status == pq.ExecStatus.FATAL_ERROR:
            pending.failed = psycopg.errors.error_from_result(result, encoding=conn.info.encoding)
    pending.in_flight = False
    failed, pending.failed = pending.failed, None
    if failed is not None:
        raise failed
    return True


def _readable(pgconn):  # noqa: ANN001, ANN202 - a psycopg wait generator
    """Wait until the server sent something, and read it."""
    while not (yield WAIT_R):
        pass
    pgconn.consume_input()


def _write(sql: str, params: list[str]) -> None:
    """Run (or, inside deferred_writes, queue) one PostgreSQL write. `params` are text (the
    array literals of _arrays)."""
    pending = getattr(connection, "_deferred_writes", None)
    if pending is None:
        with connection.cursor() as cursor:
            cursor.execute(sql, params)
        return
    pending.append(_bind(sql, params))  # sent by send_ahead, the next read or the end


def _bind(sql: str, params: list[str]) -> str:
    """The statement with its text parameters written in as string literals: with
    standard_conforming_strings (PostgreSQL's default) a literal is the text in single
    quotes, each quote doubled, which costs less than a cursor's mogrify per statement."""
    pgconn = connection.connection.pgconn
    if pgconn.parameter_status(b"standard_conforming_strings") != b"on":
        with connection.cursor() as cursor:
            return cursor.cursor.mogrify(sql, params)
    return sql % tuple("'" + p.replace("'", "''") + "'" for p in params)


def _arrays(model: type[models.Model], fields: Sequence[str], rows: list[Sequence]) -> tuple:
    """unnest(...) of the rows' columns and its parameters: each column one array literal,
    written here (psycopg's list adaptation costs more than the statement saves)."""
    types, params = [], []
    for name, column in zip(fields, zip(*rows, strict=True), strict=True):
        db_type, literal = _column_kind(model, name)
        types.append(f"%s::{db_type}[]")
        params.append("{" + literal(column) + "}")
    return f"unnest({', '.join(types)})", params


@cache
def _column_kind(model: type[models.Model], name: str) -> tuple[str, Callable]:
    """The column's type and how its values are written as the inside of an array literal."""
    field = model._meta.pk if name == "pk" else model._meta.get_field(name)
    if field.is_relation:
        field = field.target_field
    kind = field.get_internal_type()
    if kind == "BooleanField":
        return field.db_type(connection), _bools
    if kind in ("DecimalField", "FloatField") or kind.endswith(("IntegerField", "AutoField")):
        return field.db_type(connection), _numbers
    return field.db_type(connection), _texts  # text, JSON text, dates and times


def array_literal(numbers: Iterable[int]) -> str:
    """A PostgreSQL array literal of integers (ids), as one text parameter: psycopg's
    adaptation of a list costs more (cast it: `%s::bigint[]`)."""
    return "{" + _numbers(tuple(map(int, numbers))) + "}"


def _numbers(column: tuple) -> str:
    # Joined first, NULLs looked for after: `None in column` compares each Decimal with
    # None, an abstract-base-class check each (a number's text never holds "None").
    text = ",".join(map(str, column))
    if "None" in text:
        return ",".join("NULL" if v is None else str(v) for v in column)
    return text


def _bools(column: tuple) -> str:
    return ",".join("NULL" if v is None else ("t" if v else "f") for v in column)


def _texts(column: tuple) -> str:
    kinds = set(map(type, column))
    if kinds == {str}:
        probe = "".join(column)
        if "\\" not in probe and '"' not in probe:  # nothing to escape
            return '"' + '","'.join(column) + '"'
    # Each object written once: a column repeats a few (a batch's one created_at, client
    # ids mostly None). By identity, which is exact (equal values may read differently:
    # 12:00+00:00 and 13:00+01:00); the column holds them all, so no id is reused.
    written: dict[int, str] = {}
    out = []
    for value in column:
        text = written.get(id(value))
        if text is None:
            text = written[id(value)] = _text(value)
        out.append(text)
    return ",".join(out)


def _text(value: object) -> str:
    if value is None:
        return "NULL"
    text = value.isoformat() if hasattr(value, "isoformat") else str(value)
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


# ------------------------------------------------------------------ rows


def insert_rows(model: type[models.Model], fields: Sequence[str], rows: Iterable[Sequence]) -> None:
    """INSERT rows (PostgreSQL: COPY; deferred, INSERT ... SELECT FROM unnest)."""
    rows = list(rows)
    if not rows:
        return
    columns = ", ".join(_col(model, f) for f in fields)
    table = _table(model)
    if connection.vendor != "postgresql":
        marks = ", ".join(["%s"] * len(fields))
        with connection.cursor() as cursor:
            cursor.executemany(f"INSERT INTO {table} ({columns}) VALUES ({marks})", rows)
    elif getattr(connection, "_deferred_writes", None) is None:
        with connection.cursor() as cursor:
            _copy(cursor, table, columns, rows)
    else:
        source, params = _arrays(model, fields, rows)
        _write(f"INSERT INTO {table} ({columns}) SELECT * FROM {source}", params)


def update_rows(model: type[models.Model], fields: Sequence[str], rows: Iterable[Sequence]) -> None:
    """UPDATE rows by primary key: `rows` are (value for each field..., pk). PostgreSQL:
    one statement joining the table to the columns sent as arrays."""
    rows = list(rows)
    if not rows:
        return
    table, key = _table(model), _col(model, "pk")
    columns = [_col(model, f) for f in fields]
    if connection.vendor != "postgresql":
        sets = ", ".join(f"{c} = %s" for c in columns)
        with connection.cursor() as cursor:
            cursor.executemany(f"UPDATE {table} SET {sets} WHERE {key} = %s", rows)
        return
    source, params = _arrays(model, (*fields, "pk"), rows)
    names = ", ".join([*columns, key])
    sets = ", ".join(f"{c} = u.{c}" for c in columns)
    _write(
        f"UPDATE {table} SET {sets} FROM {source} AS u({names}) WHERE {table}.{key} = u.{key}",
        params,
    )


def upsert_rows(
    model: type[models.Model],
    fields: Sequence[str],
    rows: Iterable[Sequence],
    conflict: Sequence[str],
    sets: dict[str, str],
) -> None:
    """PostgreSQL only: INSERT rows, and where a row with the same `conflict` fields exists
    UPDATE it instead with `sets` (field -> SQL expression over `t`, the existing row, and
    `excluded`, the new one), e.g. {"amount": "t.amount + excluded.amount"}. Rows with the
    same conflict key must not repeat; they are written (and locked) in the given order."""
    rows = list(rows)
    if not rows:
        return
    assert connection.vendor == "postgresql", "upsert_rows is PostgreSQL's"
    columns = ", ".join(_col(model, f) for f in fields)
    keys = ", ".join(_col(model, f) for f in conflict)
    updates = ", ".join(f"{_col(model, f)} = {expr}" for f, expr in sets.items())
    source, params = _arrays(model, fields, rows)
    _write(
        f"INSERT INTO {_table(model)} AS t ({columns}) SELECT * FROM {source} "
        f"ON CONFLICT ({keys}) DO UPDATE SET {updates}",
        params,
    )
