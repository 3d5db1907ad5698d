from django.conf import settings
from django.db import models
from django.utils.translation import gettext_lazy as _


class UsageRecord(models.Model):
    """One upstream call: who made it, what it used and cost, and how it ended.

    Written once when a reply ends, whatever the outcome, so the dashboard
    shows the real spend even for replies that did not count against a quota.
    """

    message = models.OneToOneField(
        "chat.Message", on_delete=models.SET_NULL, null=True, related_name="usage_record"
    )
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, related_name="+"
    )
    subject = models.CharField(max_length=200, blank=True)
    # The user's plan when the reply ran; spend caps per plan sum over it.
    plan = models.CharField(max_length=50, blank=True)
    # The team the reply was billed to; team budgets and team usage sum over it.
    team = models.ForeignKey("teams.Team", on_delete=models.SET_NULL, null=True, related_name="+")
    chat_model = models.ForeignKey(
        "chat.ChatModel", on_delete=models.SET_NULL, null=True, related_name="+"
    )
    model_id = models.CharField(max_length=200)
    model_class = models.CharField(max_length=16, blank=True)
    outcome = models.CharField(max_length=16)
    counted = models.BooleanField(help_text="Whether the reply counted against a quota.")
    prompt_cache_hit_tokens = models.PositiveIntegerField(default=0)
    prompt_cache_miss_tokens = models.PositiveIntegerField(default=0)
    completion_tokens = models.PositiveIntegerField(default=0)
    reasoning_tokens = models.PositiveIntegerField(default=0)
    cost_usd = models.DecimalField(max_digits=14, decimal_places=8, default=0)
    time_to_first_token_ms = models.PositiveIntegerField(null=True)
    duration_ms = models.PositiveIntegerField(null=True)
    error_code = models.CharField(max_length=64, blank=True)
    # The upstream sent no usage (a stopped or broken stream), so tokens and cost
    # are estimated from the text received.
    usage_estimated = models.BooleanField(default=False)
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)

    class Meta:
        verbose_name = _("usage record")
        verbose_name_plural = _("usage records")
        indexes = [
            models.Index(fields=["user", "created_at"], name="chat_usage_user_created"),
            models.Index(fields=["chat_model", "created_at"], name="chat_usage_model_created"),
            models.Index(fields=["team", "created_at"], name="chat_usage_team_created"),
            # The dashboard finds the n-th fastest first token of a model in a narrow range.
            models.Index(
                fields=["chat_model", "time_to_first_token_ms"], name="chat_usage_model_ttft"
            ),
        ]

    def __str__(self):
        return f"{self.model_id} {self.outcome} {self.created_at:%Y-%m-%d %H:%M}"

    @staticmethod
    def total_tokens():
        """Return an expression for a row's prompt plus completion tokens, reasoning included."""
        return (
            models.F("prompt_cache_hit_tokens")
            + models.F("prompt_cache_miss_tokens")
            + models.F("completion_tokens")
        )
