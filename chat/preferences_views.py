"""The preferences page, and the language switcher that also stores the choice."""

from django import forms
from django.conf import settings
from django.contrib import messages
from django.shortcuts import redirect, render
from django.utils import translation
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.utils.translation.trans_real import parse_accept_lang_header
from django.views.decorators.http import require_http_methods, require_POST
from django.views.i18n import set_language as django_set_language

from accounts.guests import login_or_guest

from .models import Preferences
from .models.preferences import ReasoningPanel
from .templatetags.chat_preferences import preferences_of

LANGUAGE_CHOICES = [
    ("", gettext_lazy("The browser's language")),
    ("en", "English"),
    ("zh-hans", "简体中文"),
]


class PreferencesForm(forms.ModelForm):
    language = forms.ChoiceField(
        label=gettext_lazy("Interface language"), choices=LANGUAGE_CHOICES, required=False
    )
    reasoning_panel = forms.ChoiceField(
        label=gettext_lazy("Reasoning panel when the answer starts"),
        choices=[
            ("", gettext_lazy("Site default")),
            (ReasoningPanel.COLLAPSED, gettext_lazy("Collapse it")),
            (ReasoningPanel.EXPANDED, gettext_lazy("Keep it open")),
        ],
        required=False,
    )

    # Short option texts fit a phone's select, and the composer's hint gives the rest.
    send_key = forms.ChoiceField(
        label=gettext_lazy("Key that sends a message"),
        choices=[
            (Preferences.SendKey.ENTER, gettext_lazy("Enter (Shift+Enter adds a line)")),
            (Preferences.SendKey.CTRL_ENTER, gettext_lazy("Ctrl+Enter (Enter adds a line)")),
        ],
    )

    class Meta:
        model = Preferences
        fields = ["language", "theme", "reasoning_panel", "send_key"]
        labels = {"theme": gettext_lazy("Theme")}


def remember_language(response, language):
    """Set the language cookie to `language`, or delete it so the browser's language applies."""
    if language:
        response.set_cookie(
            settings.LANGUAGE_COOKIE_NAME,
            language,
            max_age=settings.LANGUAGE_COOKIE_AGE,
            path=settings.LANGUAGE_COOKIE_PATH,
            samesite=settings.LANGUAGE_COOKIE_SAMESITE,
            secure=settings.LANGUAGE_COOKIE_SECURE,
            httponly=settings.LANGUAGE_COOKIE_HTTPONLY,
        )
    else:
        response.delete_cookie(settings.LANGUAGE_COOKIE_NAME, path=settings.LANGUAGE_COOKIE_PATH)


def apply_stored_language(request):
    """Switch this request to the user's stored language; return it, or "" without one.

    The cookie carries the choice on one browser; this brings it to a browser
    where the user signs in for the first time.
    """
    language = preferences_of(request).language if request.user.is_authenticated else ""
    cookie = request.COOKIES.get(settings.LANGUAGE_COOKIE_NAME)
    if language and language != cookie:
        translation.activate(language)
        request.LANGUAGE_CODE = language
        return language
    return ""


@login_or_guest
@require_http_methods(["GET", "POST"])
def preferences(request):
    form = PreferencesForm(request.POST or None, instance=preferences_of(request))
    if request.method == "POST" and form.is_valid():
        saved = form.save()
        # The confirmation is written in the language just chosen.
        translation.activate(saved.language or browser_language(request))
        messages.success(request, _("Preferences saved."))
        response = redirect("chat:preferences")
        remember_language(response, saved.language)
        return response
    language = apply_stored_language(request)
    response = render(request, "chat/preferences.html", {"form": form})
    if language:
        remember_language(response, language)
    return response


def browser_language(request) -> str:
    """Return the site language closest to the browser's Accept-Language, ignoring the cookie."""
    for code, _quality in parse_accept_lang_header(request.META.get("HTTP_ACCEPT_LANGUAGE", "")):
        if code == "*":
            continue
        try:
            return translation.get_supported_language_variant(code)
        except LookupError:
            continue
    return settings.LANGUAGE_CODE


@require_POST
def set_language(request):
    """Switch the language like Django's view, and store the choice for a signed-in user."""
    response = django_set_language(request)
    language = request.POST.get("language", "")
    if request.user.is_authenticated and translation.check_for_language(language):
        stored = preferences_of(request)
        stored.language = language
        stored.save()
    return response
