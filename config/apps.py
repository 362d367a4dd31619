"""App config for the project package: registers the LedgerFS system checks at start-up."""

from django.apps import AppConfig
from django.core import checks


class ConfigConfig(AppConfig):
    name = "config"
    verbose_name = "LedgerFS configuration"

    def ready(self) -> None:
        from config.checks import check_production_settings

        checks.register(check_production_settings, checks.Tags.security)
