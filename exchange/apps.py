from django.apps import AppConfig


class ExchangeConfig(AppConfig):
    """The composition root: the serve command, the embedded scheduler, the engine worker."""

    name = "exchange"
    verbose_name = "Exchange"
