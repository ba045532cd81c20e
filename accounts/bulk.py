"""Bulk SQL for hot paths (the engine's batches, interest accrual): rows go in without
per-row model overhead. PostgreSQL: COPY, and UPDATE ... FROM a COPYed temporary table;
the embedded SQLite: executemany. Values must already be of the column's Python type."""

from collections.abc import Iterable, Sequence

from django.db import connection, models


def _table(model: type[models.Model]) -> str:
    return connection.ops.quote_name(model._meta.db_table)


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


def _copy(cursor, table: str, columns: str, rows: list[Sequence]) -> None:  # noqa: ANN001
    with cursor.cursor.copy(f"COPY {table} ({columns}) FROM STDIN") as copy:
        for row in rows:
            copy.write_row(row)


def insert_rows(model: type[models.Model], fields: Sequence[str], rows: Iterable[Sequence]) -> None:
    rows = list(rows)
    if not rows:
        return
    columns = ", ".join(_col(model, f) for f in fields)
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            _copy(cursor, _table(model), columns, rows)
        else:
            marks = ", ".join(["%s"] * len(fields))
            cursor.executemany(f"INSERT INTO {_table(model)} ({columns}) VALUES ({marks})", rows)


def update_rows(model: type[models.Model], fields: Sequence[str], rows: Iterable[Sequence]) -> None:
    """UPDATE rows by primary key: `rows` are (value for each field..., pk)."""
    rows = list(rows)
    if not rows:
        return
    table, key = _table(model), _col(model, "pk")
    columns = [_col(model, f) for f in fields]
    with connection.cursor() as cursor:
        if connection.vendor != "postgresql":
            sets = ", ".join(f"{c} = %s" for c in columns)
            cursor.executemany(f"UPDATE {table} SET {sets} WHERE {key} = %s", rows)
            return
        temp = connection.ops.quote_name(f"bulk_{model._meta.db_table}")
        cursor.execute(
            f"CREATE TEMP TABLE IF NOT EXISTS {temp} ON COMMIT DELETE ROWS AS "
            f"SELECT {', '.join(columns)}, {key} FROM {table} WITH NO DATA"
        )
        _copy(cursor, temp, ", ".join([*columns, key]), rows)
        sets = ", ".join(f"{c} = t.{c}" for c in columns)
        cursor.execute(f"UPDATE {table} SET {sets} FROM {temp} t WHERE {table}.{key} = t.{key}")
        cursor.execute(f"DELETE FROM {temp}")
