from django.apps import AppConfig


class ApiAccessConfig(AppConfig):
    name = "apiaccess"
    verbose_name = "API access"
    default_auto_field = "django.db.models.BigAutoField"
