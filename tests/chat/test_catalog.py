"""The model catalogue: prices, plans, upstream request settings and the environment's model."""

import uuid
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal

import pytest
from django.core.exceptions import ValidationError

from accounts.models import Plan
from chat import services
from chat.catalog import (
    THINKING_IGNORED_PARAMETERS,
    ModelUnavailable,
    available_models,
    default_model_for,
    model_for_send,
    reply_cost,
    sync_environment_model,
    upstream_config,
    upstream_user_id,
)
from chat.errors import ChatError
from chat.models import ChatModel, Conversation, Endpoint, Message, ModelPrice
from chat.models.catalog import ENVIRONMENT_SLUG, parse_windows
from chat.stream_parser import ReasoningFormat, Usage
from tests.factories import make_conversation, make_user

pytestmark = pytest.mark.django_db

# 2026-12-07 is a Monday and 2026-12-12 a Saturday.
MONDAY = datetime(2026, 12, 7, tzinfo=UTC)
SATURDAY = datetime(2026, 12, 12, tzinfo=UTC)
LONG_AGO = datetime(2020, 1, 1, tzinfo=UTC)
DEEPSEEK_WINDOWS = "01:00-04:00,06:00-10:00"
KEY_VARIABLE = "CATALOG_TEST_API_KEY"


def plan(slug):
    # Transactional tests flush the table that the data migration filled, so look up or create.
    return Plan.objects.get_or_create(slug=slug, defaults={"name": slug.title()})[0]


def make_endpoint(slug="lab", kind=Endpoint.Kind.OPENAI, **fields):
    fields.setdefault("name", slug.title())
    fields.setdefault("base_url", "http://127.0.0.1:9/v1")
    return Endpoint.objects.create(slug=slug, kind=kind, **fields)


def make_model(slug, endpoint, plans=(), **fields):
    fields.setdefault("model_id", f"{slug}-id")
    fields.setdefault("display_name", slug.title())
    model = ChatModel.objects.create(slug=slug, endpoint=endpoint, **fields)
    model.plans.set(plans)
    return model


def make_price(model, effective_from=LONG_AGO, **fields):
    fields.setdefault("input_cache_hit", Decimal("0.006"))
    fields.setdefault("input_cache_miss", Decimal("0.30"))
    fields.setdefault("output", Decimal("1.20"))
    return ModelPrice.objects.create(model=model, effective_from=effective_from, **fields)


def make_peak_price(model):
    return make_price(
        model,
        peak_windows=DEEPSEEK_WINDOWS,
        peak_weekdays_only=True,
        off_peak_input_cache_hit=Decimal("0.003"),
        off_peak_input_cache_miss=Decimal("0.15"),
        off_peak_output=Decimal("0.60"),
    )


def usage(prompt, completion, hit=None, miss=None):
    return Usage(
        prompt_tokens=prompt,
        completion_tokens=completion,
        total_tokens=prompt + completion,
        prompt_cache_hit_tokens=hit,
        prompt_cache_miss_tokens=miss,
        reasoning_tokens=None,
        cost=None,
    )


@pytest.fixture
def endpoint():
    return make_endpoint()


@pytest.fixture
def model(endpoint):
    return make_model("lab-model", endpoint)


def catalogue_slugs(user, among):
    """Return the slugs `user` may pick, among the ones a test created."""
    return {chat_model.slug for chat_model in available_models(user)} & set(among)


# Cost


def test_cost_hits_and_misses(model):
    make_price(model)
    # 1234 × 0.006 + 567 × 0.30 + 89 × 1.20 = 284.304 dollars per million tokens.
    cost = reply_cost(model, MONDAY, usage(1801, 89, hit=1234, miss=567))
    assert cost == Decimal("0.00028430")


def test_cost_from_price_method(model):
    price = make_price(model)
    cost = price.cost(MONDAY, cache_hit=1_000_000, cache_miss=2_000_000, output=500_000)
    assert cost == Decimal("1.20600000")


def test_cost_rounded_to_eight_places(model):
    price = make_price(model)
    # 1 × 0.006 / 1e6 = 0.000000006, which rounds to 0.00000001.
    assert price.cost(MONDAY, cache_hit=1, cache_miss=0, output=0) == Decimal("0.00000001")


def test_cost_without_cache_fields_all_misses(model):
    make_price(model)
    # 1000 × 0.30 + 500 × 1.20 = 900 dollars per million tokens.
    assert reply_cost(model, MONDAY, usage(1000, 500)) == Decimal("0.00090000")


def test_cost_without_usage_none(model):
    make_price(model)
    assert reply_cost(model, MONDAY, None) is None


def test_cost_without_model_none():
    assert reply_cost(None, MONDAY, usage(10, 10)) is None


def test_cost_without_start_none(model):
    make_price(model)
    assert reply_cost(model, None, usage(10, 10)) is None


def test_cost_without_price_none(model):
    assert reply_cost(model, MONDAY, usage(10, 10)) is None


def test_cost_before_first_price_none(model):
    make_price(model, effective_from=MONDAY)
    assert reply_cost(model, MONDAY - timedelta(seconds=1), usage(10, 10)) is None


CHANGE = datetime(2026, 9, 10, 4, 0, tzinfo=UTC)
ONE_MILLION_OUT = usage(0, 1_000_000, hit=0, miss=0)


@pytest.fixture
def price_change(model):
    """A model whose output price doubles at CHANGE."""
    make_price(model, effective_from=LONG_AGO, output=Decimal("1.00"))
    make_price(model, effective_from=CHANGE, output=Decimal("2.00"))
    return model


def test_price_change_before_uses_old(price_change):
    started = CHANGE - timedelta(microseconds=1)
    assert reply_cost(price_change, started, ONE_MILLION_OUT) == Decimal("1.00000000")


def test_price_change_at_boundary_uses_new(price_change):
    assert reply_cost(price_change, CHANGE, ONE_MILLION_OUT) == Decimal("2.00000000")


def test_price_change_after_uses_new(price_change):
    started = CHANGE + timedelta(days=30)
    assert reply_cost(price_change, started, ONE_MILLION_OUT) == Decimal("2.00000000")


def test_price_at_picks_latest_in_force(price_change):
    assert price_change.price_at(CHANGE).output == Decimal("2.00")
    assert price_change.price_at(CHANGE - timedelta(seconds=1)).output == Decimal("1.00")


@pytest.mark.parametrize(
    ("moment", "peak"),
    [
        (MONDAY.replace(hour=0, minute=59, second=59), False),
        (MONDAY.replace(hour=1), True),
        (MONDAY.replace(hour=3, minute=59), True),
        (MONDAY.replace(hour=3, minute=59, second=59), True),
        (MONDAY.replace(hour=4), False),
        (MONDAY.replace(hour=5, minute=59), False),
        (MONDAY.replace(hour=6), True),
        (MONDAY.replace(hour=9, minute=59), True),
        (MONDAY.replace(hour=10), False),
        (MONDAY.replace(hour=23, minute=30), False),
        (SATURDAY.replace(hour=7), False),
        (SATURDAY.replace(hour=2), False),
        (SATURDAY.replace(day=13, hour=7), False),
        # 09:00 at UTC+8 is 01:00 UTC, so it falls in the first window.
        (datetime(2026, 12, 7, 9, 0, tzinfo=timezone(timedelta(hours=8))), True),
        # 07:00 on Monday at UTC+8 is 23:00 on Sunday in UTC.
        (datetime(2026, 12, 7, 7, 0, tzinfo=timezone(timedelta(hours=8))), False),
    ],
)
def test_peak_windows(model, moment, peak):
    price = make_peak_price(model)
    assert price.is_peak(moment) is peak


def test_peak_cost_uses_peak_prices(model):
    make_peak_price(model)
    cost = reply_cost(model, MONDAY.replace(hour=7), usage(3000, 1000, hit=1000, miss=2000))
    # 1000 × 0.006 + 2000 × 0.30 + 1000 × 1.20 = 1806.
    assert cost == Decimal("0.00180600")


def test_off_peak_cost_uses_off_peak_prices(model):
    make_peak_price(model)
    cost = reply_cost(model, MONDAY.replace(hour=4), usage(3000, 1000, hit=1000, miss=2000))
    # 1000 × 0.003 + 2000 × 0.15 + 1000 × 0.60 = 903.
    assert cost == Decimal("0.00090300")


def test_weekend_cost_off_peak(model):
    make_peak_price(model)
    cost = reply_cost(model, SATURDAY.replace(hour=7), usage(3000, 1000, hit=1000, miss=2000))
    assert cost == Decimal("0.00090300")


def test_peak_every_day_without_weekday_flag(model):
    price = make_peak_price(model)
    price.peak_weekdays_only = False
    assert price.is_peak(SATURDAY.replace(hour=7)) is True
    assert price.is_peak(SATURDAY.replace(hour=4)) is False


def test_no_windows_always_peak_price(model):
    price = make_price(model)
    assert price.is_peak(SATURDAY.replace(hour=4)) is True


@pytest.mark.parametrize(
    ("text", "windows"),
    [
        ("", []),
        ("01:00-04:00", [(60, 240)]),
        (DEEPSEEK_WINDOWS, [(60, 240), (360, 600)]),
        (" 01:00-04:00 , 06:00-10:00 ", [(60, 240), (360, 600)]),
        ("00:00-24:00", [(0, 1440)]),
        ("22:30-23:59", [(1350, 1439)]),
    ],
)
def test_parse_windows_valid(text, windows):
    assert parse_windows(text) == windows


@pytest.mark.parametrize(
    "text",
    [
        "1:00-04:00",
        "01:00-4:00",
        "01:00 - 04:00",
        "01:00-04:00;06:00-10:00",
        "01-04",
        "peak",
        "01:60-02:00",
        "01:00-04:60",
        "04:00-01:00",
        "01:00-01:00",
        "23:00-24:30",
        "25:00-26:00",
        "01:00-04:00,10:00-06:00",
    ],
)
def test_parse_windows_rejects_malformed(text):
    with pytest.raises(ValueError):
        parse_windows(text)


def test_price_clean_needs_off_peak_prices(model):
    price = ModelPrice(
        model=model,
        input_cache_hit=Decimal("0.006"),
        input_cache_miss=Decimal("0.30"),
        output=Decimal("1.20"),
        peak_windows=DEEPSEEK_WINDOWS,
        off_peak_input_cache_hit=Decimal("0.003"),
        off_peak_input_cache_miss=Decimal("0.15"),
    )
    with pytest.raises(ValidationError):
        price.clean()


def test_price_clean_rejects_bad_windows(model):
    price = ModelPrice(
        model=model,
        input_cache_hit=Decimal("0.006"),
        input_cache_miss=Decimal("0.30"),
        output=Decimal("1.20"),
        peak_windows="1am-4am",
    )
    with pytest.raises(ValidationError) as raised:
        price.clean()
    assert "peak_windows" in raised.value.message_dict


def test_price_clean_accepts_complete_windows(model):
    price = ModelPrice(
        model=model,
        input_cache_hit=Decimal("0.006"),
        input_cache_miss=Decimal("0.30"),
        output=Decimal("1.20"),
        peak_windows=DEEPSEEK_WINDOWS,
        off_peak_input_cache_hit=Decimal("0.003"),
        off_peak_input_cache_miss=Decimal("0.15"),
        off_peak_output=Decimal("0.60"),
    )
    price.clean()


def test_price_clean_accepts_no_windows(model):
    price = ModelPrice(
        model=model,
        input_cache_hit=Decimal("0.006"),
        input_cache_miss=Decimal("0.30"),
        output=Decimal("1.20"),
    )
    price.clean()


# Plans


@pytest.fixture
def catalogue(endpoint):
    """Models open to every plan, to the team plan, to staff, and to both team and staff."""
    return {
        "open": make_model("open", endpoint),
        "team": make_model("team-only", endpoint, plans=[plan(Plan.TEAM)]),
        "staff": make_model("staff-only", endpoint, plans=[plan(Plan.STAFF)]),
        "both": make_model("team-and-staff", endpoint, plans=[plan(Plan.TEAM), plan(Plan.STAFF)]),
    }


CATALOGUE_SLUGS = {"open", "team-only", "staff-only", "team-and-staff"}


def test_free_user_sees_open_models(catalogue):
    user = make_user("free@example.com")
    assert catalogue_slugs(user, CATALOGUE_SLUGS) == {"open"}


def test_explicit_free_plan_sees_open_models(catalogue):
    user = make_user("free@example.com", plan=plan(Plan.FREE))
    assert catalogue_slugs(user, CATALOGUE_SLUGS) == {"open"}


def test_team_user_sees_team_models(catalogue):
    user = make_user("team@example.com", plan=plan(Plan.TEAM))
    assert catalogue_slugs(user, CATALOGUE_SLUGS) == {"open", "team-only", "team-and-staff"}


def test_staff_user_sees_staff_models(catalogue):
    user = make_user("staff@example.com", is_staff=True, plan=plan(Plan.TEAM))
    assert catalogue_slugs(user, CATALOGUE_SLUGS) == {"open", "staff-only", "team-and-staff"}


def test_guest_user_sees_open_models(catalogue):
    user = make_user("guest@example.com", plan=plan(Plan.GUEST))
    assert catalogue_slugs(user, CATALOGUE_SLUGS) == {"open"}


def test_model_on_two_plans_listed_once(catalogue):
    user = make_user("team@example.com", plan=plan(Plan.TEAM))
    slugs = [chat_model.slug for chat_model in available_models(user)]
    assert slugs.count("team-and-staff") == 1


def test_models_listed_in_picker_order(endpoint):
    make_model("second", endpoint, sort_order=2)
    make_model("first", endpoint, sort_order=1)
    user = make_user("free@example.com")
    slugs = [m.slug for m in available_models(user) if m.slug in {"first", "second"}]
    assert slugs == ["first", "second"]


def test_inactive_model_hidden(endpoint):
    make_model("retired", endpoint, is_active=False)
    user = make_user("free@example.com")
    assert catalogue_slugs(user, {"retired"}) == set()


def test_inactive_endpoint_hidden():
    closed = make_endpoint("closed", is_active=False)
    make_model("behind-closed", closed)
    user = make_user("free@example.com")
    assert catalogue_slugs(user, {"behind-closed"}) == set()


def test_send_slug_off_plan_unavailable(catalogue):
    user = make_user("free@example.com")
    with pytest.raises(ModelUnavailable):
        model_for_send(user, "team-only")


def test_send_unknown_slug_unavailable(catalogue):
    user = make_user("free@example.com")
    with pytest.raises(ModelUnavailable):
        model_for_send(user, "no-such-model")


def test_send_inactive_slug_unavailable(endpoint):
    make_model("retired", endpoint, is_active=False)
    user = make_user("free@example.com")
    with pytest.raises(ModelUnavailable):
        model_for_send(user, "retired")


def test_send_slug_on_plan_returned(catalogue):
    user = make_user("team@example.com", plan=plan(Plan.TEAM))
    assert model_for_send(user, "team-only") == catalogue["team"]


def test_send_keeps_conversation_model(catalogue, settings):
    settings.CHAT_DEFAULT_MODEL = "open"
    user = make_user("team@example.com", plan=plan(Plan.TEAM))
    conversation = make_conversation(user)
    conversation.chat_model = catalogue["team"]
    conversation.save()
    assert model_for_send(user, None, conversation) == catalogue["team"]


def test_send_drops_model_left_plan(catalogue, settings):
    settings.CHAT_DEFAULT_MODEL = "open"
    user = make_user("free@example.com")
    conversation = make_conversation(user)
    conversation.chat_model = catalogue["team"]
    conversation.save()
    assert model_for_send(user, None, conversation) == catalogue["open"]


def test_send_explicit_slug_beats_conversation(catalogue):
    user = make_user("team@example.com", plan=plan(Plan.TEAM))
    conversation = make_conversation(user)
    conversation.chat_model = catalogue["team"]
    conversation.save()
    assert model_for_send(user, "open", conversation) == catalogue["open"]


def test_default_model_setting_honoured(catalogue, settings):
    settings.CHAT_DEFAULT_MODEL = "team-and-staff"
    user = make_user("team@example.com", plan=plan(Plan.TEAM))
    assert default_model_for(user) == catalogue["both"]
    assert model_for_send(user, None) == catalogue["both"]


def test_default_model_off_plan_falls_back(catalogue, settings):
    settings.CHAT_DEFAULT_MODEL = "team-only"
    user = make_user("free@example.com")
    expected = next(iter(available_models(user)))
    assert default_model_for(user) == expected
    assert default_model_for(user).slug != "team-only"


def test_no_model_at_all_unavailable(catalogue):
    ChatModel.objects.update(is_active=False)
    user = make_user("free@example.com")
    assert default_model_for(user) is None
    with pytest.raises(ModelUnavailable):
        model_for_send(user, None)


# Upstream request settings

SAMPLING = {
    "temperature": 0.6,
    "top_p": 0.95,
    "presence_penalty": 0.1,
    "frequency_penalty": 0.2,
    "logprobs": True,
    "top_logprobs": 5,
    "seed": 7,
}


def test_ignored_parameters_listed():
    assert THINKING_IGNORED_PARAMETERS == {
        "temperature",
        "top_p",
        "presence_penalty",
        "frequency_penalty",
        "logprobs",
        "top_logprobs",
    }


def test_deepseek_thinking_strips_sampling():
    endpoint = make_endpoint("deepseek", kind=Endpoint.Kind.DEEPSEEK)
    model = make_model("reasoner", endpoint, sampling=SAMPLING)
    config = upstream_config(model)
    assert config.extra_body == {"seed": 7}


def test_deepseek_thinking_strips_endpoint_extra():
    endpoint = make_endpoint(
        "deepseek",
        kind=Endpoint.Kind.DEEPSEEK,
        extra_body={"temperature": 1.0, "top_logprobs": 2, "provider": {"order": ["a"]}},
    )
    model = make_model("reasoner", endpoint)
    config = upstream_config(model)
    assert config.extra_body == {"provider": {"order": ["a"]}}


def test_deepseek_instant_keeps_sampling():
    endpoint = make_endpoint("deepseek", kind=Endpoint.Kind.DEEPSEEK)
    model = make_model(
        "chat", endpoint, sampling=SAMPLING, model_class=ChatModel.ModelClass.INSTANT
    )
    assert upstream_config(model).extra_body == SAMPLING


def test_openai_thinking_keeps_sampling():
    endpoint = make_endpoint("vllm", extra_body={"top_k": 20})
    model = make_model("distill", endpoint, sampling=SAMPLING)
    assert upstream_config(model).extra_body == {**SAMPLING, "top_k": 20}


def test_config_leaves_model_fields_unchanged():
    endpoint = make_endpoint("deepseek", kind=Endpoint.Kind.DEEPSEEK, extra_body={"top_p": 1})
    model = make_model("reasoner", endpoint, sampling=SAMPLING, send_thinking_switch=True)
    upstream_config(model)
    assert model.sampling == SAMPLING
    assert endpoint.extra_body == {"top_p": 1}


def test_thinking_switch_enabled_for_thinking():
    endpoint = make_endpoint("deepseek", kind=Endpoint.Kind.DEEPSEEK)
    model = make_model("reasoner", endpoint, send_thinking_switch=True)
    assert upstream_config(model).extra_body["thinking"] == {"type": "enabled"}


def test_thinking_switch_disabled_for_instant():
    endpoint = make_endpoint("deepseek", kind=Endpoint.Kind.DEEPSEEK)
    model = make_model(
        "chat", endpoint, send_thinking_switch=True, model_class=ChatModel.ModelClass.INSTANT
    )
    assert upstream_config(model).extra_body["thinking"] == {"type": "disabled"}


def test_thinking_switch_off_not_sent():
    endpoint = make_endpoint("deepseek", kind=Endpoint.Kind.DEEPSEEK)
    model = make_model("reasoner", endpoint)
    assert "thinking" not in upstream_config(model).extra_body


def test_reasoning_effort_sent(model):
    model.reasoning_effort = ChatModel.Effort.HIGH
    assert upstream_config(model).extra_body["reasoning_effort"] == "high"


def test_reasoning_effort_default_not_sent(model):
    assert "reasoning_effort" not in upstream_config(model).extra_body


@pytest.mark.parametrize(
    ("stored", "parsed"),
    [
        (ChatModel.ReasoningFormat.AUTO, ReasoningFormat.AUTO),
        (ChatModel.ReasoningFormat.REASONING_CONTENT, ReasoningFormat.REASONING_CONTENT),
        (ChatModel.ReasoningFormat.REASONING, ReasoningFormat.REASONING),
        (ChatModel.ReasoningFormat.THINK_TAGS, ReasoningFormat.THINK_TAGS),
    ],
)
def test_reasoning_format_mapped(model, stored, parsed):
    model.reasoning_format = stored
    assert upstream_config(model).reasoning_format is parsed


def test_config_endpoint_fields():
    endpoint = make_endpoint(
        "lab", base_url="http://127.0.0.1:9/v1", connect_timeout=3.0, read_timeout=90.0
    )
    model = make_model("distill", endpoint, model_id="deepseek-r1:14b")
    config = upstream_config(model)
    assert config.base_url == "http://127.0.0.1:9/v1"
    assert config.url == "http://127.0.0.1:9/v1/chat/completions"
    assert config.model == "deepseek-r1:14b"
    assert config.timeouts.connect == 3.0
    assert config.timeouts.read == 90.0


def test_api_key_read_from_variable(monkeypatch):
    monkeypatch.setenv(KEY_VARIABLE, "sk-catalog-test-0001")
    endpoint = make_endpoint("lab", api_key_env=KEY_VARIABLE)
    model = make_model("distill", endpoint)
    assert upstream_config(model).api_key == "sk-catalog-test-0001"


def test_api_key_unset_variable_empty(monkeypatch):
    monkeypatch.delenv(KEY_VARIABLE, raising=False)
    endpoint = make_endpoint("lab", api_key_env=KEY_VARIABLE)
    model = make_model("distill", endpoint)
    assert upstream_config(model).api_key == ""


def test_api_key_no_variable_empty():
    endpoint = make_endpoint("lab", api_key_env="")
    model = make_model("distill", endpoint)
    assert upstream_config(model).api_key == ""


def test_api_key_read_at_call_time(monkeypatch):
    endpoint = make_endpoint("lab", api_key_env=KEY_VARIABLE)
    model = make_model("distill", endpoint)
    monkeypatch.setenv(KEY_VARIABLE, "sk-catalog-test-0001")
    upstream_config(model)
    monkeypatch.setenv(KEY_VARIABLE, "sk-catalog-test-0002")
    assert upstream_config(model).api_key == "sk-catalog-test-0002"


def test_environment_model_follows_settings(settings):
    model = sync_environment_model()
    settings.DEEPSEEK_BASE_URL = "http://127.0.0.1:9"
    settings.DEEPSEEK_API_KEY = "sk-environment-test-0001"
    settings.DEEPSEEK_MODEL = "deepseek-other"
    config = upstream_config(model)
    assert config.base_url == "http://127.0.0.1:9"
    assert config.api_key == "sk-environment-test-0001"
    assert config.model == "deepseek-other"


def test_environment_thinking_switch_follows_settings(settings):
    settings.UPSTREAM_IS_SIMULATOR = True
    model = sync_environment_model()
    assert model.endpoint.kind == Endpoint.Kind.DEEPSEEK
    settings.DEEPSEEK_THINKING = True
    assert upstream_config(model).extra_body["thinking"] == {"type": "enabled"}
    settings.DEEPSEEK_THINKING = False
    assert "thinking" not in upstream_config(model).extra_body


# The user id sent upstream


def test_user_id_deterministic():
    assert upstream_user_id(42) == upstream_user_id(42)


def test_user_id_is_32_hex():
    value = upstream_user_id(42)
    assert len(value) == 32
    assert all(char in "0123456789abcdef" for char in value)


def test_user_id_differs_per_user():
    assert upstream_user_id(1) != upstream_user_id(2)


def test_user_id_keyed_by_secret(settings):
    before = upstream_user_id(42)
    settings.SECRET_KEY = "another-test-only-key-" + "y" * 50
    assert upstream_user_id(42) != before


def test_user_id_hides_identity():
    # A long id, because a short one such as 7 occurs by chance in most hex strings.
    user = make_user("identity.check@example.com", pk=987_654_321)
    value = upstream_user_id(user.pk)
    assert "987654321" not in value
    assert "identity" not in value
    assert "example" not in value


# Accepting a message with a model


def accept(user, model_slug, conversation_id=None):
    return services.accept_message(
        user,
        conversation_id=conversation_id,
        new_conversation_id=uuid.uuid4(),
        content="Which model answers this?",
        client_id=uuid.uuid4(),
        model_slug=model_slug,
    )


def test_accept_off_plan_model_unavailable(catalogue, owner, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks() as callbacks:
        with pytest.raises(ChatError) as raised:
            accept(owner, "team-only")
    assert raised.value.code == "model_unavailable"
    assert Conversation.objects.filter(owner=owner).count() == 0
    assert Message.objects.count() == 0
    assert callbacks == []


def test_accept_unknown_model_unavailable(catalogue, owner):
    with pytest.raises(ChatError) as raised:
        accept(owner, "no-such-model")
    assert raised.value.code == "model_unavailable"
    assert Message.objects.count() == 0


def test_accept_off_plan_keeps_conversation(catalogue, owner):
    conversation = make_conversation(owner)
    conversation.chat_model = catalogue["open"]
    conversation.save()
    with pytest.raises(ChatError) as raised:
        accept(owner, "team-only", conversation_id=conversation.id)
    assert raised.value.code == "model_unavailable"
    conversation.refresh_from_db()
    assert conversation.chat_model == catalogue["open"]
    assert conversation.messages.count() == 0


@pytest.mark.parametrize("model_slug", [42, ["open"], {"slug": "open"}, True])
def test_accept_non_string_model_invalid(catalogue, owner, model_slug):
    with pytest.raises(ChatError) as raised:
        accept(owner, model_slug)
    assert raised.value.code == "invalid_input"
    assert Message.objects.count() == 0


def test_accept_model_stored_on_reply(catalogue):
    user = make_user("team@example.com", plan=plan(Plan.TEAM))
    accepted = accept(user, "team-only")
    assert accepted.conversation.chat_model == catalogue["team"]
    assert accepted.assistant_message.chat_model == catalogue["team"]
    assert accepted.assistant_message.model == "team-only-id"


def test_accept_without_slug_keeps_model(catalogue):
    user = make_user("team@example.com", plan=plan(Plan.TEAM))
    first = accept(user, "team-only")
    Message.objects.filter(pk=first.assistant_message.pk).update(status=Message.Status.COMPLETE)
    second = accept(user, None, conversation_id=first.conversation.id)
    assert second.assistant_message.chat_model == catalogue["team"]


# The environment's model


def remove_environment_model():
    ChatModel.objects.filter(slug=ENVIRONMENT_SLUG).delete()
    Endpoint.objects.filter(slug=ENVIRONMENT_SLUG).delete()


def test_sync_environment_idempotent(settings):
    settings.DEEPSEEK_MODEL = "deepseek-flash"
    remove_environment_model()
    sync_environment_model()
    sync_environment_model()
    assert Endpoint.objects.filter(slug=ENVIRONMENT_SLUG).count() == 1
    assert ChatModel.objects.filter(slug=ENVIRONMENT_SLUG).count() == 1
    assert ModelPrice.objects.filter(model__slug=ENVIRONMENT_SLUG).count() == 1


def test_sync_environment_seeds_flash_price(settings):
    settings.DEEPSEEK_MODEL = "deepseek-flash"
    remove_environment_model()
    model = sync_environment_model()
    price = model.prices.get()
    assert price.effective_from == datetime(2026, 9, 10, 4, 0, tzinfo=UTC)
    assert price.input_cache_hit == Decimal("0.006")
    assert price.input_cache_miss == Decimal("0.30")
    assert price.output == Decimal("1.20")
    assert price.peak_windows == DEEPSEEK_WINDOWS
    assert price.peak_weekdays_only is True
    assert price.off_peak_input_cache_hit == Decimal("0.003")
    assert price.off_peak_input_cache_miss == Decimal("0.15")
    assert price.off_peak_output == Decimal("0.60")
    price.full_clean()


def test_sync_environment_other_model_unpriced(settings):
    settings.DEEPSEEK_MODEL = "deepseek-other"
    remove_environment_model()
    model = sync_environment_model()
    assert model.prices.count() == 0


def test_sync_environment_refreshes_names(settings):
    remove_environment_model()
    settings.DEEPSEEK_MODEL = "deepseek-flash"
    sync_environment_model()
    settings.DEEPSEEK_MODEL = "deepseek-other"
    model = sync_environment_model()
    assert model.model_id == "deepseek-other"
    assert model.display_name == "deepseek-other"
    assert ChatModel.objects.filter(slug=ENVIRONMENT_SLUG).count() == 1


def test_seeded_price_costs(settings):
    settings.DEEPSEEK_MODEL = "deepseek-flash"
    remove_environment_model()
    model = sync_environment_model()
    tokens = usage(3000, 1000, hit=1000, miss=2000)
    # Peak: 1000 × 0.006 + 2000 × 0.30 + 1000 × 1.20 = 1806. Off-peak prices are half.
    assert reply_cost(model, MONDAY.replace(hour=2), tokens) == Decimal("0.00180600")
    assert reply_cost(model, MONDAY.replace(hour=12), tokens) == Decimal("0.00090300")
    assert reply_cost(model, datetime(2026, 9, 10, 3, 59, tzinfo=UTC), tokens) is None


def test_key_variable_must_name_an_api_key(monkeypatch):
    endpoint = make_endpoint("lab", api_key_env="SECRET_KEY")
    monkeypatch.setenv("SECRET_KEY", "not-for-upstream")
    assert endpoint.api_key() == ""
    with pytest.raises(ValidationError) as raised:
        endpoint.full_clean()
    assert "api_key_env" in raised.value.message_dict
