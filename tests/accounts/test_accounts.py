from django.urls import reverse

from accounts.models import User
from tests.factories import PASSWORD, make_user

NEW_PASSWORD = "another-long-pass-phrase-7"


def test_sign_up_creates_user_and_signs_in(client, db):
    response = client.post(
        reverse("accounts:sign_up"),
        {"email": "New.Person@Example.com", "password1": NEW_PASSWORD, "password2": NEW_PASSWORD},
    )
    assert response.status_code == 302
    assert response.url == reverse("chat:index")
    user = User.objects.get()
    assert user.email == "new.person@example.com"
    assert client.get(reverse("chat:index")).status_code == 200


def test_sign_up_duplicate_email_rejected(client, db):
    make_user("taken@example.com")
    response = client.post(
        reverse("accounts:sign_up"),
        {"email": "TAKEN@example.com", "password1": NEW_PASSWORD, "password2": NEW_PASSWORD},
    )
    assert response.status_code == 200
    assert "already exists" in response.content.decode()
    assert User.objects.count() == 1


def test_sign_up_password_mismatch_keeps_email(client, db):
    response = client.post(
        reverse("accounts:sign_up"),
        {"email": "typo@example.com", "password1": NEW_PASSWORD, "password2": "different-pass-1"},
    )
    assert response.status_code == 200
    assert 'value="typo@example.com"' in response.content.decode()
    assert User.objects.count() == 0


def test_sign_in_case_insensitive_email(client, owner):
    response = client.post(
        reverse("accounts:login"), {"username": "OWNER@example.com", "password": PASSWORD}
    )
    assert response.status_code == 302
    assert client.get(reverse("chat:index")).status_code == 200


def test_sign_in_wrong_password_rejected(client, owner):
    response = client.post(
        reverse("accounts:login"), {"username": "owner@example.com", "password": "wrong"}
    )
    assert response.status_code == 200
    assert "The email address or password is wrong." in response.content.decode()
    assert client.get(reverse("chat:index")).status_code == 302


def test_sign_out_requires_post(client, owner):
    client.force_login(owner)
    assert client.get(reverse("accounts:logout")).status_code == 405
    assert client.post(reverse("accounts:logout")).status_code == 302
    assert client.get(reverse("chat:index")).status_code == 302


def test_password_change(client, owner):
    client.force_login(owner)
    response = client.post(
        reverse("accounts:password_change"),
        {"old_password": PASSWORD, "new_password1": NEW_PASSWORD, "new_password2": NEW_PASSWORD},
    )
    assert response.status_code == 302
    owner.refresh_from_db()
    assert owner.check_password(NEW_PASSWORD)
