"""The reasoning panel default: the user's preference, else the staff's site setting."""

import json
import re

import pytest

from chat.models import Preferences, SiteSettings

pytestmark = pytest.mark.django_db


def page_data(client):
    html = client.get("/chat/").content.decode()
    match = re.search(r'<script id="chat-data" type="application/json">(.*?)</script>', html, re.S)
    return json.loads(match.group(1))


def test_panel_default_collapsed(client, owner):
    client.force_login(owner)

    assert page_data(client)["reasoningPanel"] == "collapsed"


def test_panel_follows_site_setting(client, owner):
    client.force_login(owner)
    SiteSettings.objects.update_or_create(pk=1, defaults={"reasoning_panel": "expanded"})

    assert page_data(client)["reasoningPanel"] == "expanded"


def test_panel_user_choice_wins(client, owner):
    client.force_login(owner)
    SiteSettings.objects.update_or_create(pk=1, defaults={"reasoning_panel": "expanded"})
    Preferences.objects.create(user=owner, reasoning_panel="collapsed")

    assert page_data(client)["reasoningPanel"] == "collapsed"


def test_site_settings_admin_single_row(admin_client):
    SiteSettings.current()

    response = admin_client.get("/admin/chat/sitesettings/add/")

    assert response.status_code == 403


def test_preferences_page_saves_choices(client, owner):
    client.force_login(owner)

    response = client.post(
        "/chat/preferences/",
        {
            "language": "zh-hans",
            "theme": "dark",
            "reasoning_panel": "expanded",
            "send_key": "ctrl_enter",
        },
    )

    assert response.status_code == 302
    stored = Preferences.objects.get(user=owner)
    assert (stored.language, stored.theme, stored.reasoning_panel, stored.send_key) == (
        "zh-hans",
        "dark",
        "expanded",
        "ctrl_enter",
    )
    assert response.cookies["django_language"].value == "zh-hans"
    page = client.get("/chat/").content.decode()
    assert '<html lang="zh-hans" data-theme="dark">' in page
    assert "Ctrl+Enter" in page
    assert page_data(client)["sendKey"] == "ctrl_enter"
    assert page_data(client)["reasoningPanel"] == "expanded"


def test_preferences_rejects_unknown_values(client, owner):
    client.force_login(owner)

    response = client.post(
        "/chat/preferences/", {"language": "fr", "theme": "pink", "send_key": "enter"}
    )

    assert response.status_code == 200
    body = response.content.decode()
    assert body.count("Select a valid choice.") == 2
    assert not Preferences.objects.filter(user=owner).exists()


def test_browser_language_clears_cookie(client, owner):
    client.force_login(owner)
    client.post(
        "/chat/preferences/", {"language": "zh-hans", "theme": "system", "send_key": "enter"}
    )

    response = client.post(
        "/chat/preferences/",
        {"language": "", "theme": "system", "send_key": "enter"},
        HTTP_ACCEPT_LANGUAGE="en-US,en;q=0.9",
    )

    assert response.cookies["django_language"].value == ""
    assert Preferences.objects.get(user=owner).language == ""
    page = client.get("/chat/", HTTP_ACCEPT_LANGUAGE="zh-CN,zh;q=0.9").content.decode()
    assert '<html lang="zh-hans"' in page


def test_stored_language_reaches_new_browser(client, owner):
    Preferences.objects.create(user=owner, language="zh-hans")
    client.force_login(owner)

    response = client.get("/chat/", HTTP_ACCEPT_LANGUAGE="en-US")

    assert '<html lang="zh-hans"' in response.content.decode()
    assert response.cookies["django_language"].value == "zh-hans"


def test_language_switcher_stores_choice(client, owner):
    client.force_login(owner)

    response = client.post("/chat/language/", {"language": "zh-hans", "next": "/chat/"})

    assert response.status_code == 302
    assert Preferences.objects.get(user=owner).language == "zh-hans"
    assert response.cookies["django_language"].value == "zh-hans"


def test_language_switcher_signed_out(client):
    response = client.post("/chat/language/", {"language": "zh-hans", "next": "/accounts/sign-in/"})

    assert response.status_code == 302
    assert response.cookies["django_language"].value == "zh-hans"
    assert not Preferences.objects.exists()


def test_guest_preferences_stored(client, settings):
    settings.GUEST_ACCESS = True

    client.get("/chat/preferences/")
    response = client.post(
        "/chat/preferences/", {"language": "", "theme": "light", "send_key": "enter"}
    )

    assert response.status_code == 302
    stored = Preferences.objects.get()
    assert stored.user.is_guest
    assert stored.theme == "light"
    assert 'data-theme="light"' in client.get("/chat/").content.decode()


def test_signed_out_theme_system(client):
    page = client.get("/accounts/sign-in/").content.decode()

    assert 'data-theme="system"' in page


@pytest.mark.parametrize(
    "path",
    ["/chat/language/", "/chat/preferences/", "/chat/import/"],
)
def test_post_without_csrf_rejected(owner, path):
    from django.test import Client

    client = Client(enforce_csrf_checks=True)
    client.force_login(owner)

    response = client.post(path, {"language": "zh-hans", "theme": "dark", "send_key": "enter"})

    assert response.status_code == 403
    assert not Preferences.objects.exists()
