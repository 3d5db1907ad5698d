"""Health checks of the configured endpoints: list their models and ask each model for a reply.

`check_all()` is the entry point for sync code (the staff page, `manage.py
check_endpoints`). It reads the rows first and then runs every endpoint's checks
concurrently in one event loop, so a dead endpoint costs at most one deadline.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import time
from dataclasses import dataclass

import httpx
from django.db.models import Prefetch
from django.utils.translation import gettext_lazy as _
from django.utils.translation import ngettext

from . import catalog
from .models import ChatModel, Endpoint
from .stream_parser import Finish, KeepAlive
from .upstream import (
    Retrying,
    Timeouts,
    UpstreamError,
    _code_for_status,
    _error_detail,
    _error_from_exception,
    _mask_secrets,
    stream_chat,
)

logger = logging.getLogger(__name__)

# Short on purpose: a reply may wait minutes in a busy server's queue, but a check that
# waits that long keeps a staff member staring at a loading page.
CHECK_TIMEOUTS = Timeouts(connect=5.0, read=20.0, write=5.0, pool=5.0)
# Upper bound for one whole request, because keep-alive comments reset the read timeout.
CHECK_DEADLINE_SECONDS = 30.0
PROBE_MESSAGES = [{"role": "user", "content": "Reply with OK."}]
PROBE_MAX_TOKENS = 16
MODELS_PATH = "/models"

# Plain-words descriptions of a failed check, by problem code.
PROBLEMS = {
    "auth_failed": _("API key rejected"),
    "insufficient_balance": _("no credit left"),
    "model_not_found": _("model not found"),
    "model_not_listed": _("model not listed by the server"),
    "no_model_list": _("no model list at this base URL"),
    "connect_failed": _("connection refused"),
    "invalid_url": _("invalid base URL"),
    "timeout": _("timed out"),
    "overloaded": _("server overloaded"),
    "server_error": _("server error"),
    "bad_response": _("unexpected response"),
    "invalid_request": _("request rejected"),
    "stream_interrupted": _("connection lost during the reply"),
    "upstream_error": _("server reported an error during the reply"),
}


@dataclass(frozen=True)
class CheckResult:
    """Outcome of one request: the model list (`model_slug` None) or one model's reply.

    Latencies are in milliseconds. `detail` is the server's message or the
    transport error, with API keys masked, for staff who need more than `problem`.
    """

    target: str
    model_slug: str | None
    ok: bool
    status: int | None = None
    latency_ms: int | None = None
    first_event_ms: int | None = None
    problem_code: str = ""
    detail: str = ""

    @property
    def problem(self) -> str:
        return PROBLEMS.get(self.problem_code, "") if self.problem_code else ""


@dataclass(frozen=True)
class EndpointHealth:
    """Results of one endpoint's checks: its model list, then one result per active model."""

    slug: str
    name: str
    base_url: str
    listing: CheckResult
    # Model ids from GET /models, or None when the list could not be read.
    listed_model_ids: tuple[str, ...] | None
    models: tuple[CheckResult, ...]

    @property
    def checks(self) -> tuple[CheckResult, ...]:
        return (self.listing, *self.models)

    @property
    def ok(self) -> bool:
        return all(check.ok for check in self.checks)


def problem_code_for(error: UpstreamError, model_id: str | None = None) -> str:
    """Return the PROBLEMS key for a failed request; `model_id` is None for the model list."""
    detail = error.detail.lower()
    if error.code == "connect_failed":
        # upstream._error_from_exception starts connect_failed details with these words.
        if detail.startswith("timed out"):
            return "timeout"
        if detail.startswith("invalid upstream url"):
            return "invalid_url"
        return "connect_failed"
    if error.status == 404:
        return "no_model_list" if model_id is None else "model_not_found"
    if error.code == "invalid_request" and model_id is not None:
        # NOTE: DeepSeek's reply to an unknown model id was never captured. "Model Not
        # Exist" is the likeliest text, and other servers name the model in their message.
        if "model not exist" in detail or model_id.lower() in detail:
            return "model_not_found"
    if error.code in ("rate_limited", "overloaded"):
        return "overloaded"
    if error.code in PROBLEMS:
        return error.code
    return "server_error"


def active_endpoints(slug: str | None = None) -> list[Endpoint]:
    """Return the active endpoints with their active models prefetched, for `check_endpoint`."""
    endpoints = Endpoint.objects.filter(is_active=True).prefetch_related(
        Prefetch("models", queryset=ChatModel.objects.filter(is_active=True))
    )
    if slug is not None:
        endpoints = endpoints.filter(slug=slug)
    return list(endpoints)


def check_all(endpoint_slug: str | None = None) -> list[EndpointHealth]:
    """Check every active endpoint, or only the one with `endpoint_slug`, concurrently.

    Runs its own event loop, so it must be called from sync code.
    """
    endpoints = active_endpoints(endpoint_slug)
    return asyncio.run(_check_endpoints(endpoints))


async def _check_endpoints(endpoints: list[Endpoint]) -> list[EndpointHealth]:
    async with httpx.AsyncClient() as client:
        return list(await asyncio.gather(*(check_endpoint(e, client) for e in endpoints)))


async def check_endpoint(endpoint: Endpoint, client: httpx.AsyncClient) -> EndpointHealth:
    """List the endpoint's models and ask each of its active models for a short reply.

    `endpoint` must have its models prefetched (see `active_endpoints`), because the
    ORM cannot be used here. Failures become results, never exceptions.
    """
    models = [model for model in endpoint.models.all() if model.is_active]
    # upstream_config reads only the prefetched rows and settings, so no query runs here.
    configs = [
        dataclasses.replace(catalog.upstream_config(model), max_retries=0, timeouts=CHECK_TIMEOUTS)
        for model in models
    ]
    base_url = endpoint.resolved_base_url()
    listing_task = _list_models(base_url, endpoint.api_key(), client)
    reply_tasks = [_probe_reply(client, config) for config in configs]
    (listing, listed_ids), *replies = await asyncio.gather(listing_task, *reply_tasks)

    results = []
    for model, config, reply in zip(models, configs, replies, strict=True):
        results.append(_model_result(model, config.model, reply, listed_ids))
    health = EndpointHealth(
        slug=endpoint.slug,
        name=endpoint.name,
        base_url=base_url,
        listing=listing,
        listed_model_ids=listed_ids,
        models=tuple(results),
    )
    for check in health.checks:
        if not check.ok:
            status = f" (HTTP {check.status})" if check.status is not None else ""
            logger.warning(
                "Endpoint %s check %s failed: %s%s: %s",
                endpoint.slug,
                check.target,
                check.problem_code,
                status,
                check.detail,
            )
    return health


async def _list_models(
    base_url: str, api_key: str, client: httpx.AsyncClient
) -> tuple[CheckResult, tuple[str, ...] | None]:
    url = base_url.rstrip("/") + MODELS_PATH
    headers = {"Accept": "application/json"}
    if api_key:
        headers["Authorization"] = f"Bearer {api_key}"
    started = time.perf_counter()
    response = None
    try:
        async with asyncio.timeout(CHECK_DEADLINE_SECONDS):
            response = await client.get(url, headers=headers, timeout=CHECK_TIMEOUTS.to_httpx())
        error = _listing_error(response, api_key)
    except httpx.HTTPError as exc:
        error = _error_from_exception(exc, api_key, before_response=True)
    except httpx.InvalidURL as exc:
        error = UpstreamError(
            "connect_failed", _mask_secrets(f"invalid upstream URL {url!r}: {exc}", api_key)
        )
    except TimeoutError:
        error = UpstreamError("timeout", f"no response within {CHECK_DEADLINE_SECONDS:g} s")
    latency = _elapsed_ms(started)
    status = response.status_code if response is not None else None

    model_ids = None
    if error is None:
        model_ids = _model_ids(response)
        if model_ids is None:
            error = UpstreamError(
                "bad_response", 'expected a JSON object with a "data" list of models', status=status
            )
    if error is not None:
        result = CheckResult(
            target=MODELS_PATH,
            model_slug=None,
            ok=False,
            status=error.status if error.status is not None else status,
            latency_ms=latency,
            problem_code=problem_code_for(error),
            detail=error.detail,
        )
        return result, None
    count = len(model_ids)
    result = CheckResult(
        target=MODELS_PATH,
        model_slug=None,
        ok=True,
        status=status,
        latency_ms=latency,
        detail=ngettext("%(count)d model listed", "%(count)d models listed", count)
        % {"count": count},
    )
    return result, model_ids


def _listing_error(response: httpx.Response, api_key: str) -> UpstreamError | None:
    if response.is_success:
        return None
    return UpstreamError(
        _code_for_status(response.status_code),
        _mask_secrets(_error_detail(response, response.content), api_key),
        status=response.status_code,
    )


def _model_ids(response: httpx.Response) -> tuple[str, ...] | None:
    """Return the ids of an OpenAI-style model list, or None for any other body."""
    try:
        data = response.json()
    except ValueError:
        return None
    if not isinstance(data, dict) or not isinstance(data.get("data"), list):
        return None
    return tuple(
        item["id"]
        for item in data["data"]
        if isinstance(item, dict) and isinstance(item.get("id"), str)
    )


@dataclass(frozen=True)
class _Reply:
    error: UpstreamError | None
    finish_reason: str | None
    first_event_ms: int | None
    latency_ms: int


async def _probe_reply(client: httpx.AsyncClient, config) -> _Reply:
    started = time.perf_counter()
    first_event_ms = None
    finish_reason = None
    error = None
    stream = stream_chat(client, config, PROBE_MESSAGES, max_tokens=PROBE_MAX_TOKENS)
    try:
        async with asyncio.timeout(CHECK_DEADLINE_SECONDS):
            async with contextlib.aclosing(stream) as events:
                async for event in events:
                    # Keep-alive comments only show that the request is queued, so the
                    # first data event marks the start of the model's output.
                    if first_event_ms is None and not isinstance(event, KeepAlive | Retrying):
                        first_event_ms = _elapsed_ms(started)
                    if isinstance(event, Finish):
                        finish_reason = event.reason
    except UpstreamError as exc:
        error = exc
    except TimeoutError:
        error = UpstreamError("timeout", f"no complete reply within {CHECK_DEADLINE_SECONDS:g} s")
    return _Reply(error, finish_reason, first_event_ms, _elapsed_ms(started))


def _model_result(
    model: ChatModel, model_id: str, reply: _Reply, listed_ids: tuple[str, ...] | None
) -> CheckResult:
    problem_code = ""
    detail = ""
    status = reply.error.status if reply.error is not None else None
    unlisted = listed_ids is not None and model_id not in listed_ids
    if reply.error is not None:
        problem_code = problem_code_for(reply.error, model_id)
        detail = reply.error.detail
        # A rejected request for a model the server does not list is most likely
        # rejected because of the model.
        if problem_code == "invalid_request" and unlisted:
            problem_code = "model_not_found"
    elif reply.finish_reason == "insufficient_system_resource":
        # DeepSeek's way of saying it ran out of capacity in the middle of a reply.
        problem_code = "overloaded"
        detail = str(_("the reply ended with finish_reason %(reason)s")) % {
            "reason": "insufficient_system_resource"
        }
    elif unlisted:
        problem_code = "model_not_listed"
        detail = str(_("%(model)s is not among the %(count)d ids that GET /models returned")) % {
            "model": repr(model_id),
            "count": len(listed_ids),
        }
    elif reply.finish_reason:
        # "length" is the usual outcome, because a thinking model spends the small
        # token budget on reasoning.
        detail = str(_("finish_reason %(reason)s")) % {"reason": reply.finish_reason}
    return CheckResult(
        target=model_id,
        model_slug=model.slug,
        ok=not problem_code,
        status=status,
        latency_ms=reply.latency_ms,
        first_event_ms=reply.first_event_ms,
        problem_code=problem_code,
        detail=detail,
    )


def _elapsed_ms(started: float) -> int:
    return round((time.perf_counter() - started) * 1000)
