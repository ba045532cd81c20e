"""SQLite backend for the embedded default that keeps decimals exact.

SQLite's NUMERIC affinity stores decimals as binary floats (15 significant digits). Here a
DecimalField is a TEXT column holding the exact decimal string, read back with Decimal().
Arithmetic on amounts therefore happens in Python (the ledger service does
read-modify-write inside an IMMEDIATE transaction), never in SQL. Values are stored in one
canonical text per number, so equality lookups work; ordering comparisons (<, >) on
amounts compare text and must not be done in SQL on the embedded database.
"""

from decimal import Decimal

from django.db.backends.sqlite3 import base, operations


def canonical(value: Decimal) -> str:
    """One text per number (10, 10.0 and 1E+1 are all "10"), so equality in SQL holds."""
    text = format(value.normalize(), "f")
    return "0" if text in ("-0", "0") else text


# Raw SQL (bulk inserts) gets the same canonical text as the ORM.
base.Database.register_adapter(Decimal, canonical)


class DatabaseOperations(operations.DatabaseOperations):
    def get_decimalfield_converter(self, expression):  # noqa: ANN001, ANN201
        def converter(value, expression, connection):  # noqa: ANN001, ANN202
            if value is None or isinstance(value, Decimal):
                return value
            return Decimal(value if isinstance(value, str) else repr(value))

        return converter

    def adapt_decimalfield_value(self, value, max_digits=None, decimal_places=None):  # noqa: ANN001, ANN201
        return None if value is None else canonical(Decimal(value))


class DatabaseWrapper(base.DatabaseWrapper):
    data_types = {**base.DatabaseWrapper.data_types, "DecimalField": "text"}
    ops_class = DatabaseOperations
