"""Choosing a model, building its upstream request, and pricing its replies."""

import logging
from datetime import UTC, datetime
from decimal import Decimal
from urllib.parse import urlsplit

from django.conf import settings
from django.db.models import Q
from django.utils.crypto import salted_hmac

from .models import ChatModel, Endpoint, ModelPrice
from .models.catalog import ENVIRONMENT_SLUG
from .stream_parser import ReasoningFormat
from .upstream import Timeouts, UpstreamConfig

logger = logging.getLogger(__name__)

# Parameters that DeepSeek's thinking mode ignores (temperature, top_p and the
# penalties) or rejects (logprobs in the R1 era); they are never sent to it.
THINKING_IGNORED_PARAMETERS = frozenset(
    {"temperature", "top_p", "presence_penalty", "frequency_penalty", "logprobs", "top_logprobs"}
)

# DeepSeek's list prices for deepseek-flash from 2026-09-10 04:00 UTC, in US
# dollars per million tokens (input cache hit, input cache miss, output),
# with off-peak at half the peak price. Peak hours are 01:00-04:00 and
# 06:00-10:00 UTC, Monday to Friday.
DEEPSEEK_FLASH_PRICE = {
    "effective_from": datetime(2026, 9, 10, 4, 0, tzinfo=UTC),
    "input_cache_hit": Decimal("0.006"),
    "input_cache_miss": Decimal("0.30"),
    "output": Decimal("1.20"),
    "peak_windows": "01:00-04:00,06:00-10:00",
    "peak_weekdays_only": True,
    "off_peak_input_cache_hit": Decimal("0.003"),
    "off_peak_input_cache_miss": Decimal("0.15"),
    "off_peak_output": Decimal("0.60"),
}


class ModelUnavailable(Exception):
    """The requested model does not exist, is switched off, or is not on the user's plan."""


def sync_environment_model() -> ChatModel:
    """Create or refresh the endpoint and model described by the DEEPSEEK_* settings.

    Runs after every `migrate`, so a fresh site works with no admin work and a
    changed environment shows in the admin's names. Base URL, key, model id
    and the thinking switch are read from settings at call time anyway.
    """
    host = urlsplit(settings.DEEPSEEK_BASE_URL).hostname or ""
    is_deepseek = settings.UPSTREAM_IS_SIMULATOR or host.endswith("deepseek.com")
    endpoint, _ = Endpoint.objects.update_or_create(
        slug=ENVIRONMENT_SLUG,
        defaults={
            "name": "Simulator" if settings.UPSTREAM_IS_SIMULATOR else f"Environment ({host})",
            "kind": Endpoint.Kind.DEEPSEEK if is_deepseek else Endpoint.Kind.OPENAI,
            "base_url": settings.DEEPSEEK_BASE_URL,
            "api_key_env": "" if settings.UPSTREAM_IS_SIMULATOR else "DEEPSEEK_API_KEY",
        },
    )
    model, created = ChatModel.objects.update_or_create(
        slug=ENVIRONMENT_SLUG,
        defaults={
            "endpoint": endpoint,
            "model_id": settings.DEEPSEEK_MODEL,
            "display_name": settings.DEEPSEEK_MODEL,
            "send_thinking_switch": settings.DEEPSEEK_THINKING and is_deepseek,
        },
    )
    if created and settings.DEEPSEEK_MODEL == "deepseek-flash":
        ModelPrice.objects.create(model=model, **DEEPSEEK_FLASH_PRICE)
    return model


def sync_after_migrate(sender, **kwargs):
    sync_environment_model()


def available_models(user):
    """Return the active models the user's plan may use, in picker order."""
    plan = user.effective_plan_slug()
    return (
        ChatModel.objects.filter(is_active=True, endpoint__is_active=True)
        .filter(Q(plans__isnull=True) | Q(plans__slug=plan))
        .select_related("endpoint")
        .distinct()
    )


def default_model_for(user) -> ChatModel | None:
    models = list(available_models(user))
    preferred = next((m for m in models if m.slug == settings.CHAT_DEFAULT_MODEL), None)
    return preferred or (models[0] if models else None)


def model_for_send(user, slug, conversation=None) -> ChatModel:
    """Return the model a send should use, or raise ModelUnavailable.

    An explicit slug must be on the user's plan; without one the
    conversation's model is kept while the plan still allows it.
    """
    models = available_models(user)
    if slug is not None:
        model = models.filter(slug=slug).first()
        if model is None:
            raise ModelUnavailable(slug)
        return model
    if conversation is not None and conversation.chat_model_id is not None:
        model = models.filter(pk=conversation.chat_model_id).first()
        if model is not None:
            return model
    model = default_model_for(user)
    if model is None:
        raise ModelUnavailable(None)
    return model


def upstream_user_id(user_pk) -> str:
    """Return a keyed hash of the user id for DeepSeek's `user_id`, never the id itself."""
    return salted_hmac("chat.upstream_user_id", str(user_pk)).hexdigest()[:32]


def model_id_for(model: ChatModel) -> str:
    if model.slug == ENVIRONMENT_SLUG:
        return settings.DEEPSEEK_MODEL
    return model.model_id


def upstream_config(model: ChatModel) -> UpstreamConfig:
    endpoint = model.endpoint
    extra_body = dict(endpoint.extra_body)
    sampling = dict(model.sampling)
    is_deepseek = endpoint.kind == Endpoint.Kind.DEEPSEEK
    send_switch = model.send_thinking_switch
    if model.slug == ENVIRONMENT_SLUG:
        send_switch = settings.DEEPSEEK_THINKING and is_deepseek
    if send_switch:
        extra_body["thinking"] = {"type": "enabled" if model.is_thinking else "disabled"}
    if model.reasoning_effort:
        extra_body["reasoning_effort"] = model.reasoning_effort
    if is_deepseek and model.is_thinking:
        for name in THINKING_IGNORED_PARAMETERS:
            sampling.pop(name, None)
            extra_body.pop(name, None)
    extra_body.update(sampling)
    return UpstreamConfig(
        base_url=endpoint.resolved_base_url(),
        api_key=endpoint.api_key(),
        model=model_id_for(model),
        reasoning_format=ReasoningFormat(model.reasoning_format),
        extra_body=extra_body,
        timeouts=Timeouts(connect=endpoint.connect_timeout, read=endpoint.resolved_read_timeout()),
        max_retries=settings.UPSTREAM_MAX_RETRIES,
        backoff_base=settings.UPSTREAM_BACKOFF_SECONDS,
    )


def reply_cost(model: ChatModel | None, started_at, usage) -> Decimal | None:
    """Return the cost in US dollars of a reply's usage at the price in force when it started."""
    if model is None or usage is None or started_at is None:
        return None
    price = model.price_at(started_at)
    if price is None:
        return None
    hit = usage.prompt_cache_hit_tokens
    miss = usage.prompt_cache_miss_tokens
    if hit is None or miss is None:
        # Servers that do not report caching bill every prompt token as a miss.
        hit, miss = 0, usage.prompt_tokens
    return price.cost(started_at, cache_hit=hit, cache_miss=miss, output=usage.completion_tokens)
