"""Migrations on PostgreSQL (the distributed mode's database): they apply to a fresh database,
leave nothing unmigrated, and the money CHECK constraints hold in the database itself.
(SQLite, the embedded default, is covered by test_migrations.py.)"""

from __future__ import annotations

import psycopg
import pytest

from tests.support.services import manage, service_env


def test_migrations_are_complete_on_postgres(postgres_url, tmp_path):
    env = service_env(postgres_url, None, tmp_path)
    manage("makemigrations", "--check", "--dry-run", env=env)
    plan = manage("migrate", "--plan", env=env).stdout
    assert "No planned migration operations." in plan


def test_money_check_constraints_are_enforced_by_postgres(postgres_url):
    with psycopg.connect(postgres_url) as db:
        constraints = {row[0] for row in db.execute(
            "SELECT conname FROM pg_constraint WHERE contype = 'c'").fetchall()}
        for bucket in ("available", "held", "bonded", "fee", "promo"):
            assert f"account_{bucket}_not_negative" in constraints
        assert "hold_amount_positive" in constraints
        ledger_id = db.execute(
            "INSERT INTO ledger_ledger (code, scale, created_at) VALUES ('PGCHK', 2, now()) "
            "RETURNING id").fetchone()[0]
        row = ("acc_pgchk_1", ledger_id, "did:x", "user", "open", "[]", "customer_funds",
               0, 0, 0, 0, 0, 0, 0, 0)
        insert = ("INSERT INTO ledger_account (id, ledger_id, did, kind, status, tags, "
                  "safeguarding, available, held, bonded, fee, promo, position, opened_seq, "
                  "last_seq) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, "
                  "%s)")
        db.execute(insert, row)
        with pytest.raises(psycopg.errors.CheckViolation), db.transaction():
            db.execute("UPDATE ledger_account SET available = -1 WHERE id = 'acc_pgchk_1'")
        # The issuance (system) account may go negative: minted money is owed by it.
        db.execute(insert, ("acc_pgchk_2", ledger_id, "did:issuance", "system", "open", "[]",
                            "n/a", -5, 0, 0, 0, 0, 1, 0, 0))
        db.rollback()
