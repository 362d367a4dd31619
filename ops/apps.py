from django.apps import AppConfig
from django.db.models.signals import post_migrate


class OpsConfig(AppConfig):
    name = "ops"
    verbose_name = "Operations"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from ledger.permissions import auditors_group_ensure

        def ensure_groups(sender, using="default", **kwargs) -> None:
            auditors_group_ensure(using=using)

        # Sent once this app's permissions exist (it comes after ledger in INSTALLED_APPS):
        # the auditors group must exist on every installation, like the permissions.
        post_migrate.connect(ensure_groups, sender=self, weak=False,
                             dispatch_uid="ops.auditors_group")
