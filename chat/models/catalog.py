"""The model catalogue: upstream endpoints, the models users may pick, and their prices."""

import os
import re
from datetime import UTC, datetime
from decimal import Decimal

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import RegexValidator
from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from accounts.models import ModelClass

# Only variables named like API keys can be read, so an endpoint cannot send
# SECRET_KEY or DATABASE_URL to its server.
ENV_NAME = RegexValidator(
    r"^[A-Z][A-Z0-9_]*API_KEY$",
    _(
        "Use the name of an environment variable that ends in API_KEY, in capital "
        "letters, digits and underscores."
    ),
)
# Slug of the endpoint and model built from the DEEPSEEK_* environment variables.
ENVIRONMENT_SLUG = "environment"
PER_MILLION = Decimal(1_000_000)


class Endpoint(models.Model):
    """An OpenAI-compatible chat-completions server."""

    class Kind(models.TextChoices):
        DEEPSEEK = "deepseek", _("DeepSeek API")
        OPENAI = "openai", _("OpenAI-compatible (vLLM, SGLang, Ollama, llama.cpp, OpenRouter)")

    slug = models.SlugField(_("slug"), unique=True)
    name = models.CharField(_("name"), max_length=100)
    kind = models.CharField(_("kind"), max_length=16, choices=Kind.choices)
    base_url = models.URLField(
        _("base URL"),
        help_text=_("For example https://api.deepseek.com or http://127.0.0.1:8000/v1."),
    )
    api_key_env = models.CharField(
        _("API key variable"),
        max_length=100,
        blank=True,
        validators=[ENV_NAME],
        help_text=_(
            "Name of the environment variable that holds the API key; empty for a "
            "server without authentication. The key itself is never stored."
        ),
    )
    extra_body = models.JSONField(
        _("extra request fields"),
        default=dict,
        blank=True,
        help_text=_("JSON object merged into every request, such as provider options."),
    )
    connect_timeout = models.FloatField(_("connect timeout (s)"), default=10.0)
    read_timeout = models.FloatField(
        _("read timeout (s)"),
        default=600.0,
        help_text=_("Longest silence from the server before a reply fails."),
    )
    is_active = models.BooleanField(_("active"), default=True)

    class Meta:
        ordering = ["name"]
        verbose_name = _("endpoint")
        verbose_name_plural = _("endpoints")

    def __str__(self):
        return self.name

    @property
    def managed_by_environment(self):
        return self.slug == ENVIRONMENT_SLUG

    def resolved_base_url(self) -> str:
        # The environment's endpoint follows the settings of the running
        # process, so changing DEEPSEEK_BASE_URL needs no admin work.
        return settings.DEEPSEEK_BASE_URL if self.managed_by_environment else self.base_url

    def resolved_read_timeout(self) -> float:
        # UPSTREAM_READ_TIMEOUT_SECONDS sets the environment's endpoint, as README says.
        if self.managed_by_environment:
            return settings.UPSTREAM_READ_TIMEOUT_SECONDS
        return self.read_timeout

    def api_key(self) -> str:
        """Return the API key from the environment; never store or display it."""
        if self.managed_by_environment:
            return settings.DEEPSEEK_API_KEY
        if not self.api_key_env or not self.api_key_env.endswith("API_KEY"):
            return ""
        return os.environ.get(self.api_key_env, "")

    @property
    def is_simulator(self) -> bool:
        if self.managed_by_environment:
            return settings.UPSTREAM_IS_SIMULATOR
        return self.base_url.rstrip("/") == settings.SIMULATOR_URL.rstrip("/")


class ChatModel(models.Model):
    """A model users may pick: where it runs, how it reasons, what it costs."""

    # Quotas count per class, so the classes are the ones plans define.
    ModelClass = ModelClass

    class ReasoningFormat(models.TextChoices):
        AUTO = "auto", _("automatic")
        REASONING_CONTENT = "reasoning_content", _("reasoning_content field")
        REASONING = "reasoning", _("reasoning field")
        THINK_TAGS = "think_tags", _("<think> tags in the content")

    class Effort(models.TextChoices):
        DEFAULT = "", _("server default")
        LOW = "low", _("low")
        HIGH = "high", _("high")
        MAX = "max", _("max")

    slug = models.SlugField(_("slug"), unique=True)
    endpoint = models.ForeignKey(Endpoint, on_delete=models.PROTECT, related_name="models")
    model_id = models.CharField(
        _("model id"), max_length=200, help_text=_("The name sent upstream.")
    )
    display_name = models.CharField(_("display name"), max_length=100)
    model_class = models.CharField(
        _("class"), max_length=16, choices=ModelClass.choices, default=ModelClass.THINKING
    )
    send_thinking_switch = models.BooleanField(
        _("send DeepSeek's thinking switch"),
        default=False,
        help_text=_('Sends "thinking": {"type": "enabled"} (or "disabled" for instant models).'),
    )
    reasoning_effort = models.CharField(
        _("reasoning effort"), max_length=8, choices=Effort.choices, blank=True
    )
    reasoning_format = models.CharField(
        _("reasoning arrives as"),
        max_length=32,
        choices=ReasoningFormat.choices,
        default=ReasoningFormat.AUTO,
    )
    context_budget_tokens = models.PositiveIntegerField(
        _("context budget (tokens)"),
        default=48_000,
        help_text=_("Estimated tokens of history sent; older turns are dropped whole."),
    )
    max_output_tokens = models.PositiveIntegerField(
        _("maximum output tokens"),
        null=True,
        blank=True,
        help_text=_("Sent as max_tokens; empty leaves the server's default."),
    )
    sampling = models.JSONField(
        _("sampling parameters"),
        default=dict,
        blank=True,
        help_text=_(
            'Such as {"temperature": 0.6}. Left out for thinking models of the DeepSeek '
            "API, which ignore or reject them."
        ),
    )
    plans = models.ManyToManyField(
        "accounts.Plan",
        blank=True,
        related_name="models",
        verbose_name=_("plans"),
        help_text=_("Plans that may use this model; none selected means every plan."),
    )
    is_active = models.BooleanField(_("active"), default=True)
    sort_order = models.PositiveIntegerField(_("order"), default=0)

    class Meta:
        ordering = ["sort_order", "display_name"]
        verbose_name = _("model")
        verbose_name_plural = _("models")

    def __str__(self):
        return self.display_name

    @property
    def is_thinking(self):
        return self.model_class == self.ModelClass.THINKING

    def price_at(self, moment: datetime) -> "ModelPrice | None":
        return self.prices.filter(effective_from__lte=moment).order_by("-effective_from").first()


class ModelPrice(models.Model):
    """Prices in US dollars per million tokens, in force from `effective_from`.

    With peak windows set, the main prices apply inside the windows and the
    off-peak prices outside them, as DeepSeek has billed since August 2026.
    """

    model = models.ForeignKey(ChatModel, on_delete=models.CASCADE, related_name="prices")
    effective_from = models.DateTimeField(_("in force from"), default=timezone.now)
    input_cache_hit = models.DecimalField(_("input, cache hit"), max_digits=12, decimal_places=6)
    input_cache_miss = models.DecimalField(_("input, cache miss"), max_digits=12, decimal_places=6)
    output = models.DecimalField(_("output"), max_digits=12, decimal_places=6)
    peak_windows = models.CharField(
        _("peak windows (UTC)"),
        max_length=200,
        blank=True,
        help_text=_("Comma-separated HH:MM-HH:MM ranges, such as 01:00-04:00,06:00-10:00."),
    )
    peak_weekdays_only = models.BooleanField(
        _("peak on weekdays only"),
        default=False,
        help_text=_("Saturdays and Sundays are off-peak all day."),
    )
    off_peak_input_cache_hit = models.DecimalField(
        _("off-peak input, cache hit"), max_digits=12, decimal_places=6, null=True, blank=True
    )
    off_peak_input_cache_miss = models.DecimalField(
        _("off-peak input, cache miss"), max_digits=12, decimal_places=6, null=True, blank=True
    )
    off_peak_output = models.DecimalField(
        _("off-peak output"), max_digits=12, decimal_places=6, null=True, blank=True
    )

    class Meta:
        ordering = ["model", "-effective_from"]
        verbose_name = _("price")
        verbose_name_plural = _("prices")
        constraints = [
            models.UniqueConstraint(
                fields=["model", "effective_from"], name="chat_price_model_from_unique"
            ),
        ]

    def __str__(self):
        return f"{self.model} from {self.effective_from:%Y-%m-%d %H:%M}"

    def clean(self):
        try:
            windows = parse_windows(self.peak_windows)
        except ValueError as error:
            raise ValidationError({"peak_windows": str(error)}) from None
        off_peak = (
            self.off_peak_input_cache_hit,
            self.off_peak_input_cache_miss,
            self.off_peak_output,
        )
        if windows and any(price is None for price in off_peak):
            raise ValidationError(_("Peak windows need all three off-peak prices."))

    def is_peak(self, moment: datetime) -> bool:
        windows = parse_windows(self.peak_windows)
        if not windows:
            return True
        utc = moment.astimezone(UTC)
        if self.peak_weekdays_only and utc.weekday() >= 5:
            return False
        minute = utc.hour * 60 + utc.minute
        return any(start <= minute < end for start, end in windows)

    def cost(self, moment, *, cache_hit: int, cache_miss: int, output: int) -> Decimal:
        """Return the cost in US dollars of one call's tokens at `moment`."""
        if self.is_peak(moment):
            prices = (self.input_cache_hit, self.input_cache_miss, self.output)
        else:
            prices = (
                self.off_peak_input_cache_hit,
                self.off_peak_input_cache_miss,
                self.off_peak_output,
            )
        total = cache_hit * prices[0] + cache_miss * prices[1] + output * prices[2]
        return (total / PER_MILLION).quantize(Decimal("0.00000001"))


_WINDOW = re.compile(r"^(\d{2}):(\d{2})-(\d{2}):(\d{2})$")


def parse_windows(text: str) -> list[tuple[int, int]]:
    """Parse "HH:MM-HH:MM,..." into (start, end) minute pairs; end 24:00 is allowed."""
    windows = []
    for part in filter(None, (piece.strip() for piece in text.split(","))):
        match = _WINDOW.match(part)
        if not match:
            raise ValueError(f"{part!r} is not a HH:MM-HH:MM range.")
        start_hour, start_minute, end_hour, end_minute = map(int, match.groups())
        start = start_hour * 60 + start_minute
        end = end_hour * 60 + end_minute
        if start_minute > 59 or end_minute > 59 or end > 24 * 60 or start >= end:
            raise ValueError(f"{part!r} is not a range within one day.")
        windows.append((start, end))
    return windows
