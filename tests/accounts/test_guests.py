"""The public demo's guests: access, keying by address, and sign-up carry-over."""

import uuid

import pytest
from django.urls import reverse

from accounts import quotas
from accounts.guests import client_ip
from accounts.models import PlanLimit, QuotaCounter, User
from chat import services
from chat.errors import ChatError
from chat.models import Conversation, Message

from .signing_up import sign_up_by_link

pytestmark = pytest.mark.django_db

PASSWORD = "a-long-guest-pass-phrase"


def send(user, ip, content="hello"):
    return services.accept_message(
        user,
        conversation_id=None,
        new_conversation_id=uuid.uuid4(),
        content=content,
        client_id=uuid.uuid4(),
        client_ip=ip,
    )


def finish(accepted):
    # The per-conversation and in-flight rules need the reply to have ended.
    Message.objects.filter(pk=accepted.assistant_message.pk).update(status=Message.Status.COMPLETE)


@pytest.fixture
def guest_cap_two():
    PlanLimit.objects.filter(plan__slug="guest", model_class="thinking").update(
        messages_per_day=2, messages_per_minute=None
    )


def test_anonymous_redirected_without_guest_access(client, settings):
    settings.GUEST_ACCESS = False
    response = client.get(reverse("chat:index"))
    assert response.status_code == 302
    assert User.objects.count() == 0


def test_anonymous_becomes_guest_with_guest_access(client, settings):
    settings.GUEST_ACCESS = True
    response = client.get(reverse("chat:index"))
    assert response.status_code == 200
    guest = User.objects.get()
    assert guest.is_guest is True
    assert guest.effective_plan_slug() == "guest"
    assert not guest.has_usable_password()
    assert "Sign up to keep your conversations" in response.content.decode()
    # The same browser keeps the same guest.
    client.get(reverse("chat:index"))
    assert User.objects.count() == 1


@pytest.mark.parametrize(
    ("trusted", "forwarded", "peer", "expected"),
    [
        (0, "203.0.113.9", "10.0.0.1", "10.0.0.1"),
        (1, "203.0.113.9", "10.0.0.1", "203.0.113.9"),
        (1, "198.51.100.7, 203.0.113.9", "10.0.0.1", "203.0.113.9"),
        (2, "198.51.100.7, 203.0.113.9", "10.0.0.1", "198.51.100.7"),
        (2, "203.0.113.9", "10.0.0.1", "10.0.0.1"),
        (1, "not-an-address", "10.0.0.1", "10.0.0.1"),
        (1, "", "10.0.0.1", "10.0.0.1"),
    ],
)
def test_client_ip_trusts_configured_proxies(settings, trusted, forwarded, peer, expected):
    settings.TRUSTED_PROXY_COUNT = trusted
    assert client_ip(forwarded, peer) == expected


def test_new_guest_same_address_shares_cap(guest_cap_two):
    first = User.objects.create_guest()
    finish(send(first, "203.0.113.9"))
    finish(send(first, "203.0.113.9"))

    # Clearing cookies makes a new guest account, but the address is the same.
    second = User.objects.create_guest()
    with pytest.raises(ChatError) as raised:
        send(second, "203.0.113.9")
    assert raised.value.code == "quota_exceeded"
    # The refused send took nothing from the new guest's own counter.
    assert not QuotaCounter.objects.filter(subject=f"user:{second.pk}", used__gt=0).exists()

    other_address = User.objects.create_guest()
    send(other_address, "198.51.100.7")


def test_guest_refund_returns_both_counters(guest_cap_two):
    guest = User.objects.create_guest()
    accepted = send(guest, "203.0.113.9")
    reply = accepted.assistant_message
    assert reply.quota_subject == f"user:{guest.pk}|ip:203.0.113.9"

    quotas.refund(reply.quota_subject, reply.quota_class, reply.quota_day)

    assert QuotaCounter.objects.get(subject=f"user:{guest.pk}").used == 0
    assert QuotaCounter.objects.get(subject="ip:203.0.113.9").used == 0


def test_signed_up_user_not_keyed_by_address(owner, guest_cap_two):
    send(owner, "203.0.113.9")
    assert not QuotaCounter.objects.filter(subject__startswith="ip:").exists()


def test_guest_sign_up_keeps_conversations_and_usage(client, settings):
    settings.GUEST_ACCESS = True
    client.get(reverse("chat:index"))
    guest = User.objects.get()
    accepted = send(guest, "203.0.113.9", "my first question")
    finish(accepted)

    form_page = client.get(reverse("accounts:sign_up")).content.decode()
    assert "guest.invalid" not in form_page

    response = sign_up_by_link(client, "Joined@Example.com", PASSWORD)

    assert response.status_code == 302
    user = User.objects.get()
    assert user.pk == guest.pk
    assert user.is_guest is False
    assert user.email == "joined@example.com"
    assert user.check_password(PASSWORD)
    assert Conversation.objects.get().owner == user
    status = quotas.status_for(user, "thinking")
    assert status.limit == 50
    assert status.remaining == 49  # the guest's message still counts today
    assert client.get(reverse("chat:index")).status_code == 200
