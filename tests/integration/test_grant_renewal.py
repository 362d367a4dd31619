"""Renewing what a web process remembers of a user's account grants
(`ledger.permissions.account_view_renew`): rows only added since are read alone; anything else
(a grant taken away, a group joined) loads every grant again. Grants here are made and taken
away with guardian directly, as another process would: not through `account_view_grant`,
which updates this process's memory itself."""

from __future__ import annotations

import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from guardian.shortcuts import assign_perm, remove_perm

from ledger import permissions, services
from ledger.core.commands import Command
from ledger.core.state import account_id_for
from ledger.models import Account
from ledger.permissions import (
    VIEW_ACCOUNT,
    account_view_allowed,
    account_view_remembered,
    account_view_renew,
    grant_cache_clear,
)

pytestmark = pytest.mark.django_db

DIDS = ("did:example:first", "did:example:later", "did:example:team")
FIRST, LATER, TEAM = (account_id_for("EUR", did) for did in DIDS)


@pytest.fixture(autouse=True)
def world(ledger_runtime):
    grant_cache_clear()
    ledger, _ = services.ledger_create(code="EUR", scale=2)
    services.commands_execute(ledger="EUR", commands=[
        Command("open_account", f"open-{did}", "setup", did=did) for did in DIDS])
    services.ledger_project(ledger=ledger)
    yield
    grant_cache_clear()


@pytest.fixture
def support():
    user = get_user_model().objects.create_user("support", password="pw-support")
    assign_perm(VIEW_ACCOUNT, user, Account.objects.get(pk=FIRST))
    return user


@pytest.fixture
def full_loads(monkeypatch) -> list[int]:
    """Counts the renewals that loaded every grant again."""
    calls: list[int] = []
    load_all = permissions._grants_all

    def counted(tables):
        calls.append(1)
        return load_all(tables)

    monkeypatch.setattr(permissions, "_grants_all", counted)
    return calls


def test_grants_added_elsewhere_are_read_alone(support, full_loads):
    assert account_view_allowed(support, FIRST) and not account_view_allowed(support, LATER)
    assert len(full_loads) == 1  # the first look-up loads them all

    account_view_renew(support)  # nothing changed
    assign_perm(VIEW_ACCOUNT, support, Account.objects.get(pk=LATER))
    account_view_renew(support)

    assert account_view_remembered(support, LATER) is True
    assert account_view_remembered(support, FIRST) is True
    assert account_view_remembered(support, TEAM) is False
    assert len(full_loads) == 1


def test_a_grant_taken_away_loads_every_grant_again(support, full_loads):
    assign_perm(VIEW_ACCOUNT, support, Account.objects.get(pk=LATER))
    assert account_view_allowed(support, FIRST) and account_view_allowed(support, LATER)

    remove_perm(VIEW_ACCOUNT, support, Account.objects.get(pk=FIRST))
    account_view_renew(support)

    assert account_view_remembered(support, FIRST) is False
    assert account_view_remembered(support, LATER) is True
    assert len(full_loads) == 2


def test_a_grant_taken_away_and_another_made_is_not_mistaken_for_an_addition(
    support, full_loads
):
    assert account_view_allowed(support, FIRST)
    remove_perm(VIEW_ACCOUNT, support, Account.objects.get(pk=FIRST))
    assign_perm(VIEW_ACCOUNT, support, Account.objects.get(pk=LATER))
    account_view_renew(support)

    assert account_view_remembered(support, FIRST) is False
    assert account_view_remembered(support, LATER) is True
    assert len(full_loads) == 2


def test_a_group_joined_brings_its_older_grants(support, full_loads):
    team = Group.objects.create(name="team")
    assign_perm(VIEW_ACCOUNT, team, Account.objects.get(pk=TEAM))
    other = Group.objects.create(name="other")
    support.groups.add(other)
    assign_perm(VIEW_ACCOUNT, other, Account.objects.get(pk=LATER))  # after team's grant
    assert account_view_allowed(support, LATER) and not account_view_allowed(support, TEAM)

    support.groups.add(team)  # its grant's row is older than what was seen
    account_view_renew(support)

    assert account_view_remembered(support, TEAM) is True
    assert len(full_loads) == 2
