from io import StringIO

import pytest
from django.core.management import call_command

pytestmark = pytest.mark.django_db


def test_models_and_migrations_agree() -> None:
    output = StringIO()
    call_command("makemigrations", "--check", "--dry-run", stdout=output)
