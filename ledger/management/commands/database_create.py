"""`manage.py database_create`: create the PostgreSQL database of DATABASE_URL if it is missing.

`make up` runs it before `migrate`, so a fresh machine needs nothing but a running server. It
connects to the server's `postgres` maintenance database with the same credentials. SQLite
needs nothing (the file is created on first use).
"""

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError


class Command(BaseCommand):
    help = "Create the PostgreSQL database named by DATABASE_URL if it does not exist."
    requires_system_checks = []

    def handle(self, *args, **options) -> None:
        database = settings.DATABASES["default"]
        if database["ENGINE"] != "django.db.backends.postgresql":
            self.stdout.write("Not PostgreSQL: nothing to create.")
            return
        import psycopg
        from psycopg import sql

        params = {
            "dbname": "postgres", "host": database.get("HOST") or None,
            "port": database.get("PORT") or None, "user": database.get("USER") or None,
            "password": database.get("PASSWORD") or None,
        }
        name = database["NAME"]
        try:
            with psycopg.connect(**{k: v for k, v in params.items() if v}, autocommit=True) as db:
                exists = db.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name])
                if exists.fetchone():
                    self.stdout.write(f"Database {name} exists.")
                    return
                db.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
        except psycopg.Error as exc:
            raise CommandError(f"cannot create database {name}: {exc}") from None
        self.stdout.write(f"Created database {name}.")
