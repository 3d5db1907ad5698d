"""The upstream request a reply sends: history, output cap and user_id."""

import pytest

from accounts.models import PlanLimit
from chat.catalog import upstream_user_id
from chat.models import ChatModel, Message
from chat.replies import _prepare_call
from tests.factories import make_conversation, make_message

pytestmark = pytest.mark.django_db


@pytest.fixture
def reply(owner):
    conversation = make_conversation(owner)
    make_message(conversation, "user", "question")
    model = ChatModel.objects.get(slug="environment")
    return make_message(
        conversation, "assistant", status=Message.Status.STREAMING, chat_model=model
    )


def set_caps(owner, *, plan_cap, model_cap, settings, site_cap=None):
    PlanLimit.objects.filter(plan__slug="free", model_class="thinking").update(
        max_output_tokens=plan_cap
    )
    ChatModel.objects.filter(slug="environment").update(max_output_tokens=model_cap)
    settings.CHAT_MAX_OUTPUT_TOKENS = site_cap


@pytest.mark.parametrize(
    ("plan_cap", "model_cap", "site_cap", "expected"),
    [
        (None, None, None, None),
        (100, 500, None, 100),
        (800, 500, None, 500),
        (800, 500, 300, 300),
        (None, None, 2000, 2000),
    ],
)
def test_smallest_output_cap_sent(owner, reply, settings, plan_cap, model_cap, site_cap, expected):
    set_caps(owner, plan_cap=plan_cap, model_cap=model_cap, settings=settings, site_cap=site_cap)
    reply = Message.objects.select_related("conversation__owner", "chat_model__endpoint").get(
        pk=reply.pk
    )
    assert _prepare_call(reply).max_tokens == expected


def test_deepseek_endpoint_gets_hashed_user_id(owner, reply):
    call = _prepare_call(reply)
    assert call.user_id == upstream_user_id(owner.pk)
    assert call.messages == [{"role": "user", "content": "question"}]
