"""Steps of the emailed-link sign-up for Django's test client."""

import re
from urllib.parse import urlencode

from django.urls import reverse

from tests.mailbox import outbox_link

CSRF_INPUT = re.compile(r'name="csrfmiddlewaretoken" value="[^"]+"')


def without_csrf(response) -> str:
    """Return the page's HTML with its CSRF tokens blanked, which differ per response."""
    return CSRF_INPUT.sub('name="csrfmiddlewaretoken" value=""', response.content.decode())


def request_link(client, email, next_url=None, **extra):
    """Post the sign-up form; returns the response."""
    url = reverse("accounts:sign_up")
    if next_url is not None:
        url += "?" + urlencode({"next": next_url})
    return client.post(url, {"email": email}, **extra)


def choose_password(client, link_path, password, confirmation=None):
    data = {"password1": password, "password2": password if confirmation is None else confirmation}
    return client.post(link_path, data)


def sign_up_by_link(client, email, password, next_url=None):
    """Ask for the link, open it from the outbox and choose a password.

    Returns the response to the password form.
    """
    sent = request_link(client, email, next_url)
    assert sent.status_code == 200, sent.content.decode()[:500]
    return choose_password(client, outbox_link(email), password)
