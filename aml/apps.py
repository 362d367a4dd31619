from django.apps import AppConfig


class AmlConfig(AppConfig):
    name = "aml"
    verbose_name = "AML monitoring"
