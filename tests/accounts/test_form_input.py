"""Bad input on the account forms: a form error saying what was wrong, nothing stored."""

import pytest
from django.core import mail
from django.urls import reverse

from accounts.models import User
from tests.factories import PASSWORD
from tests.mailbox import outbox_link

from .signing_up import request_link

GOOD = "a-long-test-passphrase-42"

SIGN_UP_CASES = [
    ("empty", {}, "This field is required."),
    ("email-invalid", {"email": "not-an-email"}, "Enter a valid email address."),
    ("email-nul", {"email": "a\x00b@example.com"}, "Null characters are not allowed."),
    ("email-too-long", {"email": "a" * 250 + "@example.com"}, "at most 254 characters"),
]


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("fields", "message"),
    [case[1:] for case in SIGN_UP_CASES],
    ids=[case[0] for case in SIGN_UP_CASES],
)
def test_sign_up_bad_input(client, owner, fields, message):
    response = client.post(reverse("accounts:sign_up"), fields)

    assert response.status_code == 200
    assert message in response.content.decode()
    assert mail.outbox == []
    assert User.objects.count() == 1  # only the owner


CHOOSE_PASSWORD_CASES = [
    ("empty", {"password1": "", "password2": ""}, "This field is required."),
    ("passwords-differ", {"password2": GOOD + "x"}, "The two password fields didn"),
    ("password-short", {"password1": "x7!", "password2": "x7!"}, "too short"),
    ("password-numeric", {"password1": "8301942756", "password2": "8301942756"}, "numeric"),
    ("password-common", {"password1": "password123", "password2": "password123"}, "too common"),
    (
        "password-like-email",
        {"password1": "marguerite1", "password2": "marguerite1"},
        "too similar",
    ),
    (
        "password-nul",
        {"password1": GOOD + "\x00", "password2": GOOD + "\x00"},
        "Null characters are not allowed.",
    ),
]


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("fields", "message"),
    [case[1:] for case in CHOOSE_PASSWORD_CASES],
    ids=[case[0] for case in CHOOSE_PASSWORD_CASES],
)
def test_choose_password_bad_input(client, owner, fields, message):
    request_link(client, "marguerite@example.com")
    data = {"password1": GOOD, "password2": GOOD}
    data.update(fields)

    response = client.post(outbox_link("marguerite@example.com"), data)

    assert response.status_code == 200
    assert message in response.content.decode()
    assert User.objects.count() == 1  # only the owner
    assert "_auth_user_id" not in client.session


SIGN_IN_CASES = [
    ("empty", {"username": "", "password": ""}, "This field is required."),
    ("email-invalid", {"username": "owner"}, "Enter a valid email address."),
    ("email-nul", {"username": "owner\x00@example.com"}, "Null characters are not allowed."),
    ("password-wrong", {"password": "wrong password"}, "The email address or password is wrong."),
    ("account-unknown", {"username": "nobody@example.com"}, "The email address or password is"),
    ("password-huge", {"password": "x" * 100_000}, "The email address or password is wrong."),
]


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("fields", "message"),
    [case[1:] for case in SIGN_IN_CASES],
    ids=[case[0] for case in SIGN_IN_CASES],
)
def test_sign_in_bad_input(client, owner, fields, message):
    data = {"username": "owner@example.com", "password": PASSWORD}
    data.update(fields)

    response = client.post(reverse("accounts:login"), data)

    assert response.status_code == 200
    assert message in response.content.decode()
    assert "_auth_user_id" not in client.session


PASSWORD_CHANGE_CASES = [
    ("old-wrong", {"old_password": "not it"}, "Your old password was entered incorrectly."),
    ("old-missing", {"old_password": ""}, "This field is required."),
    ("new-differ", {"new_password2": GOOD + "y"}, "The two password fields didn"),
    ("new-short", {"new_password1": "ab1", "new_password2": "ab1"}, "too short"),
    ("new-nul", {"new_password1": "a\x00" + GOOD, "new_password2": "a\x00" + GOOD}, "Null"),
]


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("fields", "message"),
    [case[1:] for case in PASSWORD_CHANGE_CASES],
    ids=[case[0] for case in PASSWORD_CHANGE_CASES],
)
def test_password_change_bad_input(client, owner, fields, message):
    client.force_login(owner)
    data = {"old_password": PASSWORD, "new_password1": GOOD, "new_password2": GOOD}
    data.update(fields)

    response = client.post(reverse("accounts:password_change"), data)

    assert response.status_code == 200
    assert message in response.content.decode()
    owner.refresh_from_db()
    assert owner.check_password(PASSWORD)
