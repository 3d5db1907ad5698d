import secrets

from django.db import models
from django.utils.translation import gettext_lazy as _


def new_share_token() -> str:
    """Return an unguessable URL-safe token: 32 random bytes, 43 characters."""
    return secrets.token_urlsafe(32)


class ShareLink(models.Model):
    """A public read-only link to one conversation, made and revoked by its owner.

    Revoking deletes the row, so the old token finds nothing; sharing again
    makes a new token.
    """

    conversation = models.OneToOneField(
        "chat.Conversation",
        on_delete=models.CASCADE,
        primary_key=True,
        related_name="share_link",
        verbose_name=_("conversation"),
    )
    token = models.CharField(max_length=64, unique=True, default=new_share_token, editable=False)
    # Whether the public page shows the model's reasoning; the owner picks it.
    show_reasoning = models.BooleanField(_("show reasoning"), default=False)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name = _("share link")
        verbose_name_plural = _("share links")

    def __str__(self):
        return str(self.conversation)
