import uuid

from django.conf import settings
from django.db import models
from django.urls import reverse
from django.utils.translation import gettext_lazy as _


class Conversation(models.Model):
    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="conversations"
    )
    title = models.CharField(_("title"), max_length=200, blank=True)
    # The model picked for this conversation; the next send uses it by default.
    chat_model = models.ForeignKey(
        "chat.ChatModel", on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    # The team the conversation's replies are billed to; empty bills nobody but the owner.
    team = models.ForeignKey(
        "teams.Team",
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="conversations",
        verbose_name=_("team"),
    )
    # The team whose members may read the conversation; empty keeps it private.
    shared_with_team = models.ForeignKey(
        "teams.Team",
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="shared_conversations",
        verbose_name=_("shared with team"),
    )
    # Pinned conversations head the list, the most recently pinned first.
    pinned_at = models.DateTimeField(_("pinned at"), null=True, blank=True)
    # Deleted by the owner: hidden everywhere, and restorable until purged.
    deleted_at = models.DateTimeField(_("deleted at"), null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-updated_at"]
        verbose_name = _("conversation")
        verbose_name_plural = _("conversations")
        indexes = [models.Index(fields=["owner", "-updated_at"], name="chat_conv_owner_updated")]

    def __str__(self):
        return self.title or str(self.id)

    def get_absolute_url(self):
        return reverse("chat:conversation", args=[self.id])


class Message(models.Model):
    class Role(models.TextChoices):
        USER = "user", _("user")
        ASSISTANT = "assistant", _("assistant")

    class Status(models.TextChoices):
        QUEUED = "queued", _("queued")
        STREAMING = "streaming", _("streaming")
        COMPLETE = "complete", _("complete")
        STOPPED = "stopped", _("stopped")
        TRUNCATED = "truncated", _("truncated")
        FAILED = "failed", _("failed")
        INTERRUPTED = "interrupted", _("interrupted")

    TERMINAL = frozenset(
        {Status.COMPLETE, Status.STOPPED, Status.TRUNCATED, Status.FAILED, Status.INTERRUPTED}
    )
    IN_FLIGHT = frozenset({Status.QUEUED, Status.STREAMING})

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    conversation = models.ForeignKey(
        Conversation, on_delete=models.CASCADE, related_name="messages"
    )
    # The message this one follows. Siblings (same parent) are versions: an edited
    # question, or a regenerated reply. The history sent upstream is the chain of
    # parents; None only for a conversation's first message.
    parent = models.ForeignKey(
        "self", on_delete=models.CASCADE, null=True, blank=True, related_name="children"
    )
    role = models.CharField(max_length=16, choices=Role.choices)
    status = models.CharField(max_length=16, choices=Status.choices)
    content = models.TextField(blank=True)
    reasoning = models.TextField(blank=True)
    # A UUID made by the browser for a user message; a resend with the same
    # value returns the stored message instead of creating a second one.
    client_id = models.UUIDField(null=True, blank=True, unique=True)
    # The catalogue entry that wrote a reply, and the model id it sent upstream
    # (kept when the catalogue entry changes or goes).
    chat_model = models.ForeignKey(
        "chat.ChatModel", on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    model = models.CharField(max_length=200, blank=True)
    finish_reason = models.CharField(max_length=64, blank=True)
    error_code = models.CharField(max_length=64, blank=True)
    error_detail = models.TextField(blank=True)

    prompt_tokens = models.PositiveIntegerField(null=True, blank=True)
    completion_tokens = models.PositiveIntegerField(null=True, blank=True)
    reasoning_tokens = models.PositiveIntegerField(null=True, blank=True)
    cache_hit_tokens = models.PositiveIntegerField(null=True, blank=True)
    cache_miss_tokens = models.PositiveIntegerField(null=True, blank=True)
    # US dollars at the model's price when the reply started; None without usage.
    cost_usd = models.DecimalField(max_digits=14, decimal_places=8, null=True, blank=True)

    # The quota reservation a reply holds, settled by its outcome when it ends:
    # the counter row is named here because the reply may end after the reset.
    class QuotaState(models.TextChoices):
        NONE = "", _("not counted")
        RESERVED = "reserved", _("reserved")
        COUNTED = "counted", _("counted")
        REFUNDED = "refunded", _("refunded")

    quota_subject = models.CharField(max_length=200, blank=True)
    quota_class = models.CharField(max_length=16, blank=True)
    quota_day = models.DateField(null=True, blank=True)
    quota_state = models.CharField(
        max_length=16, choices=QuotaState.choices, default=QuotaState.NONE, blank=True
    )

    # Sequence number of the last delta stored with this row (checkpoints).
    seq = models.PositiveIntegerField(default=0)
    created_at = models.DateTimeField(auto_now_add=True)
    started_at = models.DateTimeField(null=True, blank=True)
    first_token_at = models.DateTimeField(null=True, blank=True)
    # When the first answer token arrived, which ends the reasoning phase.
    answer_started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    heartbeat_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["created_at"]
        verbose_name = _("message")
        verbose_name_plural = _("messages")
        indexes = [
            models.Index(fields=["conversation", "created_at"], name="chat_msg_conv_created"),
            models.Index(
                fields=["status", "heartbeat_at"],
                name="chat_msg_inflight_heartbeat",
                condition=models.Q(status__in=["queued", "streaming"]),
            ),
        ]

    def __str__(self):
        return f"{self.role} {self.id} ({self.status})"

    @property
    def is_terminal(self):
        return self.status in self.TERMINAL

    def usage(self):
        """Return the token counts as sent in `message.done` events."""
        return {
            "prompt_tokens": self.prompt_tokens,
            "completion_tokens": self.completion_tokens,
            "reasoning_tokens": self.reasoning_tokens,
            "prompt_cache_hit_tokens": self.cache_hit_tokens,
            "prompt_cache_miss_tokens": self.cache_miss_tokens,
        }

    def error(self):
        if not self.error_code:
            return None
        return {"code": self.error_code, "detail": self.error_detail}

    def as_event_dict(self):
        """Return the message as the websocket protocol and the page show it."""
        return {
            "id": str(self.id),
            "role": self.role,
            "status": self.status,
            "content": self.content,
            "reasoning": self.reasoning,
            "model": self.model,
            "finish_reason": self.finish_reason,
            "error": self.error(),
            "usage": self.usage(),
            "seq": self.seq,
            "created_at": self.created_at.isoformat() if self.created_at else None,
            "thinking_seconds": self.thinking_seconds(),
            "parent": str(self.parent_id) if self.parent_id else None,
            # The reasoning timer of a page opened mid-reply counts from these.
            "reasoning_started_at": _iso(self.first_token_at if self.reasoning else None),
            "answer_started_at": _iso(self.answer_started_at),
        }

    def thinking_seconds(self):
        """Return how long the model reasoned, or None if it showed no reasoning."""
        if not self.reasoning or not self.first_token_at:
            return None
        end = self.answer_started_at or self.finished_at
        if end is None:
            return None
        # Whole seconds, as the live timer on the page counts them.
        return round((end - self.first_token_at).total_seconds())


def _iso(moment):
    return moment.isoformat() if moment else None
