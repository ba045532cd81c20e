from django.apps import AppConfig


class LendingConfig(AppConfig):
    name = "lending"
    verbose_name = "Borrow and lend"
