"""Key rotation for the secrets stored encrypted (scaling/crypto.py): Redis URLs, and the
alert channels' URLs and signing secrets."""

from dataclasses import dataclass

from django.apps import apps
from django.db import transaction

from scaling.crypto import DecryptionError, reencrypt
from scaling.models import HerokuAccount, RedisInstance


class UnreadableURLs(Exception):
    """Some stored URLs cannot be decrypted with ENCRYPTION_KEYS; nothing was changed."""


@dataclass(frozen=True)
class RotationResult:
    reencrypted: int  # Redis URLs (the accounts' API keys are re-encrypted with them)
    forgotten: tuple[str, ...]  # instances whose unreadable URL was cleared, to be read again from Heroku
    channels_reencrypted: int = 0  # alert channels whose URL or secret was re-encrypted


def redis_urls_reencrypt(*, forget_unreadable=False):
    """Re-encrypt every stored Redis URL with the first key of ENCRYPTION_KEYS, all or nothing.

    A URL no configured key can read stops the rotation (UnreadableURLs naming the
    instances) unless `forget_unreadable`: then it is cleared, and the next sample of that
    instance reads it again from Heroku (its config var).
    """
    with transaction.atomic():
        _account_keys_reencrypt()
        rows = list(RedisInstance.objects.select_for_update().exclude(redis_url_encrypted="")
                    .order_by("name").values_list("pk", "name", "redis_url_encrypted"))
        fresh, unreadable = _tokens_reencrypt(rows)
        channels_fresh, channels_unreadable = _channel_secrets_reencrypt()
        if channels_unreadable and not forget_unreadable:
            raise UnreadableURLs(
                f"the secrets of alert channels {', '.join(channels_unreadable)} cannot be decrypted with "
                "ENCRYPTION_KEYS; nothing was changed. Add the key they were encrypted with after the new one, or run "
                "again with --forget-unreadable to clear them (channels made from the environment get them back at the "
                "next start-up; others are entered again in the admin)")
        if unreadable and not forget_unreadable:
            names = ", ".join(name for _, name in unreadable[:10]) + (" ..." if len(unreadable) > 10 else "")
            raise UnreadableURLs(
                f"{len(unreadable)} of {len(rows)} stored Redis URLs cannot be decrypted with ENCRYPTION_KEYS"
                f" ({names}); nothing was changed. Add the key they were encrypted with (or 'derived' for the key"
                " derived from SECRET_KEY) after the new one, or run again with --forget-unreadable to have them"
                " read again from Heroku"
            )
        for pk, token in fresh.items():
            RedisInstance.objects.filter(pk=pk).update(redis_url_encrypted=token)
        if unreadable:
            RedisInstance.objects.filter(pk__in=[pk for pk, _ in unreadable]).update(redis_url_encrypted="", resolved_at=None)
        channel_model = apps.get_model("notifications", "AlertChannel")
        for pk, fields in channels_fresh.items():
            channel_model.objects.filter(pk=pk).update(**fields)
    return RotationResult(reencrypted=len(fresh), forgotten=tuple(name for _, name in unreadable),
                          channels_reencrypted=len(channels_fresh))


def _account_keys_reencrypt():
    """The stored Heroku API keys under the newest key too. A key no configured key reads
    cannot be read again from anywhere: it stops the rotation (nothing changed), whatever
    `forget_unreadable` says; add its key back, or `heroku_accounts add NAME --replace`."""
    rows = list(HerokuAccount.objects.select_for_update().exclude(api_key_encrypted="")
                .order_by("name").values_list("pk", "name", "api_key_encrypted"))
    fresh, unreadable = _tokens_reencrypt(rows)
    if unreadable:
        raise UnreadableURLs(
            f"the stored API keys of the Heroku accounts {', '.join(name for _, name in unreadable)} cannot be decrypted with "
            "ENCRYPTION_KEYS; nothing was changed. Add the key they were encrypted with after the new one, or give "
            "them their API key again: python manage.py heroku_accounts add NAME --replace"
        )
    for pk, token in fresh.items():
        HerokuAccount.objects.filter(pk=pk).update(api_key_encrypted=token)


def _tokens_reencrypt(rows):
    """({pk: token under the newest key}, [(pk, name) no configured key reads]) of (pk, name, token) rows."""
    fresh, unreadable = {}, []
    for pk, name, token in rows:
        try:
            fresh[pk] = reencrypt(token)
        except DecryptionError:
            unreadable.append((pk, name))
    return fresh, unreadable


def _channel_secrets_reencrypt():
    """The alert channels' URL and secret under the newest key: ({pk: fields}, unreadable names);
    an unreadable secret is cleared in the fields (written only with --forget-unreadable)."""
    channel_model = apps.get_model("notifications", "AlertChannel")
    fresh, unreadable = {}, []
    for channel in channel_model.objects.select_for_update().order_by("name"):
        fields = {}
        for field in ("url_encrypted", "secret_encrypted"):
            token = getattr(channel, field)
            if not token:
                continue
            try:
                fields[field] = reencrypt(token)
            except DecryptionError:
                fields[field] = ""
                if channel.name not in unreadable:
                    unreadable.append(channel.name)
        if fields:
            fresh[channel.pk] = fields
    return fresh, unreadable
