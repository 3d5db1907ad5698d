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
        return (
            f"{self.viewer_id} opened {self.conversation_uuid} at {self.opened_at:%Y-%m-%d %H:%M}"
        )


class RollupState(models.Model):
    """The day boundaries the rollups below were built with; one row, id 1.

    The rollups count days in QUOTA_TIME_ZONE from QUOTA_RESET_AT. When those
    settings change, the dashboard stops reading the rollups until
    `migrate` or `manage.py rebuild_usage_rollups` rebuilds them.
    """

    time_zone = models.CharField(max_length=64)
    reset_at = models.CharField(max_length=5)
    rebuilt_at = models.DateTimeField()

    def __str__(self):
        return f"days in {self.time_zone} from {self.reset_at}"


class UsageDaily(models.Model):
    """Sums of the usage ledger per quota day and filterable key, kept exact by a trigger.

    A PostgreSQL trigger on chat_usagerecord adds every inserted row and
    subtracts every deleted one (an update does both), in the transaction that
    changes the ledger. `team_key` and `model_key` are 0 where the ledger has
    no team or catalogue model, so the unique key has no NULLs.
    """

    day = models.DateField()
    team_key = models.BigIntegerField()
    plan = models.CharField(max_length=50)
    model_key = models.BigIntegerField()
    model_id = models.CharField(max_length=200)
    outcome = models.CharField(max_length=16)
    error_code = models.CharField(max_length=64)
    reply_count = models.BigIntegerField(default=0)
    cache_hit_tokens = models.BigIntegerField(default=0)
    cache_miss_tokens = models.BigIntegerField(default=0)
    completion_tokens = models.BigIntegerField(default=0)
    reasoning_tokens = models.BigIntegerField(default=0)
    cost_usd = models.DecimalField(max_digits=24, decimal_places=8, default=0)
    # Completion tokens and milliseconds from first token to end, of replies that streamed.
    streamed_completion_tokens = models.BigIntegerField(default=0)
    streaming_time_ms = models.BigIntegerField(default=0)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=[
                    "day",
                    "team_key",
                    "plan",
                    "model_key",
                    "model_id",
                    "outcome",
                    "error_code",
                ],
                name="dash_usage_daily_key",
            ),
        ]

    def __str__(self):
        return f"{self.day} {self.model_id} {self.outcome}: {self.reply_count}"


class LatencyDaily(models.Model):
    """Counts of replies per latency bucket, model and quota day, kept exact by the same trigger.

    `measure` is "ttft" (time to first token) or "duration". Buckets are
    100 ms wide up to 10 s, 1 s wide up to 120 s and 10 s wide above
    (dashboard.rollups.bucket_of), so every /metrics histogram bound is a
    bucket edge and a percentile needs only the ledger rows of one bucket.
    """

    measure = models.CharField(max_length=8)
    day = models.DateField()
    model_key = models.BigIntegerField()
    model_id = models.CharField(max_length=200)
    bucket = models.IntegerField()
    reply_count = models.BigIntegerField(default=0)
    sum_ms = models.BigIntegerField(default=0)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["measure", "day", "model_key", "model_id", "bucket"],
                name="dash_latency_daily_key",
            ),
        ]

    def __str__(self):
        return f"{self.measure} {self.day} {self.model_id} bucket {self.bucket}: {self.reply_count}"


class UserDaily(models.Model):
    """Replies, tokens and cost per user and quota day, kept exact by the same trigger.

    Ledger rows without a user (a deleted account) are not counted here.
    `last_reply_at` is the newest reply of the row's key; when a ledger row is
    deleted or changed, the trigger reads the newest remaining one again.
    """

    day = models.DateField()
    user_id = models.BigIntegerField()
    team_key = models.BigIntegerField()
    plan = models.CharField(max_length=50)
    reply_count = models.BigIntegerField(default=0)
    tokens = models.BigIntegerField(default=0)
    cost_usd = models.DecimalField(max_digits=24, decimal_places=8, default=0)
    last_reply_at = models.DateTimeField(null=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["day", "user_id", "team_key", "plan"], name="dash_user_daily_key"
            ),
        ]

    def __str__(self):
        return f"{self.day} user {self.user_id}: {self.reply_count}"
