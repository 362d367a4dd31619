from django.apps import AppConfig


class LedgerConfig(AppConfig):
    """Django adapter around the pure ledger core: read models, services, admin."""

    name = "ledger"
    default_auto_field = "django.db.models.BigAutoField"
