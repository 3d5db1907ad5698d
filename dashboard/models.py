from django.conf import settings
from django.db import models
from django.utils.translation import gettext_lazy as _


class ConversationAccess(models.Model):
    """One opening of someone's conversation by staff from the dashboard: who, which, when.

    The conversation id is kept as a value as well, so the record outlives
    a deleted conversation.
    """

    viewer = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        related_name="+",
        verbose_name=_("viewer"),
    )
    conversation = models.ForeignKey(
        "chat.Conversation",
        on_delete=models.SET_NULL,
        null=True,
        related_name="+",
        verbose_name=_("conversation"),
    )
    conversation_uuid = models.UUIDField(_("conversation id"))
    # The conversation's owner when it was opened, so the owner's page lists it.
    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        related_name="+",
        verbose_name=_("owner"),
    )
    opened_at = models.DateTimeField(_("opened at"), auto_now_add=True)

    class Meta:
        ordering = ["-opened_at"]
        verbose_name = _("conversation access")
        verbose_name_plural = _("conversation accesses")
        indexes = [models.Index(fields=["owner", "-opened_at"], name="dash_access_owner_opened")]

    def __str__(self):
        return f"{self.viewer_id} opened {self.conversation_uuid} at {self.opened_at:%Y-%m-%d %H:%M}"
