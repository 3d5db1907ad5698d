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
