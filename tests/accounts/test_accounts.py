from django.urls import reverse

from tests.factories import PASSWORD

NEW_PASSWORD = "another-long-pass-phrase-7"


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
