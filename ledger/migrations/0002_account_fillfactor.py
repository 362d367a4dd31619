"""Leave room in each PostgreSQL page of the accounts table for new row versions.

The projector rewrites every touched account's balances about once a second. PostgreSQL can
put the new version of a row on the same page only if the page has room; then no index changes
(a HOT update: no balance column is indexed). The accounts table was filled to 100%, so most
updates moved the row to another page and inserted it into all five indexes of the table: under
distributed load (`python -m bench http-distributed`), B-tree inserts and index clean-up were
the largest part of the projector's PostgreSQL backend, which used 0.2 core. SQLite has no
such setting; the migration does nothing there.
"""

from django.db import migrations

ACCOUNT_FILLFACTOR = 50
"""Percent of each page filled by inserts; the rest is kept for updated versions."""


def set_fillfactor(apps, schema_editor, fillfactor: int | None = ACCOUNT_FILLFACTOR) -> None:
    if schema_editor.connection.vendor != "postgresql":
        return
    table = schema_editor.quote_name(apps.get_model("ledger", "Account")._meta.db_table)
    if fillfactor is None:
        schema_editor.execute(f"ALTER TABLE {table} RESET (fillfactor)")
    else:
        schema_editor.execute(f"ALTER TABLE {table} SET (fillfactor = {int(fillfactor)})")


def reset_fillfactor(apps, schema_editor) -> None:
    set_fillfactor(apps, schema_editor, None)


class Migration(migrations.Migration):
    dependencies = [("ledger", "0001_initial")]

    operations = [migrations.RunPython(set_fillfactor, reset_fillfactor)]
