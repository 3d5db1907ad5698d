from django import template

from chat.models import Preferences

register = template.Library()


def preferences_of(request) -> Preferences:
    """Return the request user's chat preferences, read once per request."""
    cached = getattr(request, "_chat_preferences", None)
    if cached is None:
        cached = Preferences.for_user(request.user)
        request._chat_preferences = cached
    return cached


@register.simple_tag(takes_context=True)
def current_theme(context) -> str:
    """Return "light", "dark" or "system" for the `data-theme` attribute of <html>.

    The server renders the attribute, so the page is painted in the chosen
    theme from the first frame, with no script and no inline style.
    """
    request = context.get("request")
    if request is None or not request.user.is_authenticated:
        return Preferences.Theme.SYSTEM
    return preferences_of(request).theme
