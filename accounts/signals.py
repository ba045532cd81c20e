"""Every user gets a ledger account; the asset cache follows admin edits."""

from django.conf import settings
from django.db.models.signals import post_save
from django.dispatch import receiver

from accounts.models import Account, Asset
from accounts.services import clear_asset_cache


@receiver(post_save, sender=settings.AUTH_USER_MODEL)
def create_account_for_user(sender, instance, created: bool, **kwargs) -> None:  # noqa: ANN001
    if created:
        Account.objects.get_or_create(user=instance, defaults={"name": f"user:{instance.pk}"})


@receiver(post_save, sender=Asset)
def asset_saved(sender, instance, **kwargs) -> None:  # noqa: ANN001
    clear_asset_cache()
