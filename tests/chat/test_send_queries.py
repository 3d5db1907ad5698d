"""How many queries one send costs, pinned so that a regression fails.

The counts are of `services.accept_message` on a send that is accepted.
pytest-django runs each test inside a transaction, so the send's own
transaction shows as a SAVEPOINT and its RELEASE: two of each count. In
production they are BEGIN and COMMIT, which Django does not count as
queries.
"""

import asyncio

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from accounts import quotas
from accounts.models import PlanLimit, QuotaBlock, QuotaCounter
from chat.errors import ChatError
from chat.models import Conversation, Message
from tests.chat.websocket import connect, is_done, receive, receive_until, send_frame
from tests.factories import make_conversation
from tests.teams.helpers import make_team, send

pytestmark = pytest.mark.django_db

# The same four sends ran 29, 29, 31 and 32 queries before they were trimmed.
NEW_CONVERSATION_QUERIES = 15
FOLLOW_UP_QUERIES = 17
TEAM_NEW_CONVERSATION_QUERIES = 16
TEAM_FOLLOW_UP_QUERIES = 18


def finish(accepted):
    """End the queued reply, so the conversation is not busy for the next send."""
    Message.objects.filter(pk=accepted.assistant_message.pk).update(status=Message.Status.COMPLETE)


def test_new_conversation_query_count(owner, django_assert_num_queries):
    with django_assert_num_queries(NEW_CONVERSATION_QUERIES):
        accepted = send(owner)

    assert Conversation.objects.filter(pk=accepted.conversation.pk).exists()
    assert Message.objects.filter(conversation=accepted.conversation).count() == 2


def test_follow_up_query_count(owner, django_assert_num_queries):
    first = send(owner)
    finish(first)

    with django_assert_num_queries(FOLLOW_UP_QUERIES):
        accepted = send(owner, conversation_id=first.conversation.id)

    assert accepted.user_message.parent_id == first.assistant_message.id


def test_team_new_conversation_query_count(owner, django_assert_num_queries):
    team = make_team(owner)

    with django_assert_num_queries(TEAM_NEW_CONVERSATION_QUERIES):
        accepted = send(owner)

    assert accepted.conversation.team_id == team.pk


def test_team_follow_up_query_count(owner, django_assert_num_queries):
    team = make_team(owner)
    first = send(owner)
    finish(first)

    with django_assert_num_queries(TEAM_FOLLOW_UP_QUERIES):
        accepted = send(owner, conversation_id=first.conversation.id)

    assert accepted.conversation.team_id == team.pk


def test_team_check_locks_team_row(owner):
    make_team(owner)

    with CaptureQueriesContext(connection) as captured:
        send(owner)

    locks = [query["sql"] for query in captured if "FOR UPDATE" in query["sql"]]
    assert any('FOR UPDATE OF "teams_team"' in sql for sql in locks), locks
    assert any(sql.startswith('SELECT "accounts_user"."id"') for sql in locks), locks


def test_quota_in_reply_matches_status(owner):
    finish(send(owner))
    accepted = send(owner)

    status = quotas.status_for(owner, accepted.assistant_message.quota_class).as_dict()
    assert accepted.quota == status
    assert accepted.quota["remaining"] == accepted.quota["limit"] - 2


def test_quota_in_reply_without_daily_cap(owner):
    make_team(owner)  # the team plan has no daily cap

    accepted = send(owner)

    status = quotas.status_for(owner, accepted.assistant_message.quota_class).as_dict()
    assert accepted.quota == status
    assert accepted.quota["remaining"] is None


def test_reply_sorts_after_question(owner):
    accepted = send(owner)

    question = Message.objects.get(pk=accepted.user_message.pk)
    reply = Message.objects.get(pk=accepted.assistant_message.pk)
    assert reply.created_at > question.created_at
    assert reply.parent_id == question.id


def test_zero_daily_limit_refused_without_counter(owner):
    PlanLimit.objects.filter(plan__slug="free").update(messages_per_day=0)

    with pytest.raises(ChatError) as raised:
        send(owner)

    assert raised.value.code == "quota_exceeded"
    assert QuotaCounter.objects.count() == 0
    assert Conversation.objects.count() == 0
    assert QuotaBlock.objects.filter(user=owner, code="quota_exceeded").count() == 1


def test_refused_new_conversation_stores_nothing(owner):
    PlanLimit.objects.filter(plan__slug="free").update(max_in_flight=1)
    send(owner)  # its reply stays queued

    with pytest.raises(ChatError) as raised:
        send(owner)

    assert raised.value.code == "busy"
    assert Conversation.objects.count() == 1
    assert Message.objects.count() == 2
    assert QuotaBlock.objects.filter(user=owner, code="busy").count() == 1


def test_rate_limit_counts_recent_sends(owner):
    PlanLimit.objects.filter(plan__slug="free").update(messages_per_minute=2, max_in_flight=5)
    send(owner)
    send(owner)

    with pytest.raises(ChatError) as raised:
        send(owner)

    assert raised.value.code == "rate_limited"
    assert 0 < raised.value.retry_after <= 60


def test_subscribe_called_after_ownership_check(owner, outsider):
    first = send(owner)
    finish(first)
    calls = []

    def subscribe(conversation_id):
        calls.append((conversation_id, Message.objects.count()))

    send(owner, conversation_id=first.conversation.id, subscribe=subscribe)
    with pytest.raises(ChatError) as raised:
        send(outsider, conversation_id=first.conversation.id, subscribe=subscribe)

    assert raised.value.code == "not_found"
    assert len(calls) == 1
    conversation_id, messages_then = calls[0]
    assert conversation_id == first.conversation.id
    # Called before the new question and reply were stored, so before the
    # reply task could be enqueued.
    assert messages_then == 2
    assert Message.objects.count() == 4


def test_subscribe_not_called_for_new_conversation(owner):
    subscribed = []

    send(owner, subscribe=subscribed.append)

    assert subscribed == []


@pytest.mark.django_db(transaction=True)
@pytest.mark.e2e
async def test_follow_up_over_socket_streams(live_stack, owner, owner_cookie):
    # The subscribe callback runs on channels' database thread, inside the
    # send's transaction, and reaches the event loop through async_to_sync.
    # A deadlock or an error there fails the send.
    conversation = await asyncio.to_thread(make_conversation, owner)
    communicator = await connect(owner_cookie)

    await communicator.send_json_to(send_frame("[sim rate=0]\nAgain", str(conversation.id)))
    accepted = await receive(communicator)
    frames = await receive_until(communicator, is_done)

    assert accepted["type"] == "message.accepted"
    assert accepted["conversation"] == str(conversation.id)
    assert any(frame["type"] == "content.delta" for frame in frames)
    assert frames[-1]["status"] == "complete"
    await communicator.disconnect()
