from django.conf import settings
from django.http import Http404
from django.middleware.csrf import get_token
from django.shortcuts import render
from django.utils import timezone
from django.utils.translation import gettext as _

from accounts import quotas
from accounts.guests import login_or_guest
from teams.access import teams_of

from . import catalog, conversation_api, sharing
from .errors import REPLY_ERRORS, REQUEST_ERRORS, ChatError
from .models import Conversation
from .preferences_views import apply_stored_language, remember_language
from .services import get_conversation_for_user, interrupt_stale_replies
from .templatetags.chat_preferences import preferences_of
from .tree import with_parents

SIDEBAR_CONVERSATIONS = 100
TEAM_SHARED_CONVERSATIONS = 20


@login_or_guest
def index(request):
    return _chat_page(request, conversation=None)


@login_or_guest
def conversation(request, conversation_id):
    try:
        current = get_conversation_for_user(request.user, conversation_id)
    except ChatError:
        raise Http404(_("Conversation not found.")) from None
    interrupt_stale_replies(current)
    return _chat_page(request, conversation=current)


def _chat_page(request, conversation):
    conversations = Conversation.objects.filter(owner=request.user, deleted_at__isnull=True).only(
        "id", "title", "updated_at"
    )[:SIDEBAR_CONVERSATIONS]
    messages = []
    if conversation is not None:
        messages = with_parents([m.as_event_dict() for m in conversation.messages.all()])
    models = list(catalog.available_models(request.user))
    preferences = preferences_of(request)
    language = apply_stored_language(request)
    selected = _selected_model(request.user, conversation)

    page_data = {
        "conversation": str(conversation.id) if conversation else None,
        "messages": messages,
        "maxInputChars": settings.CHAT_MAX_INPUT_CHARS,
        "models": [
            {
                "slug": model.slug,
                "name": model.display_name,
                "simulator": model.endpoint.is_simulator,
                "class": model.model_class,
            }
            for model in models
        ],
        "model": selected.slug if selected else None,
        "quota": {
            model_class: quotas.status_for(request.user, model_class).as_dict()
            for model_class in {model.model_class for model in models}
        },
        "requestErrors": {code: str(text) for code, text in REQUEST_ERRORS.items()},
        "replyErrors": {code: str(text) for code, text in REPLY_ERRORS.items()},
        "strings": _page_strings(),
        "serverTime": timezone.now().isoformat(),
        "sidebar": conversation_api.list_page(request.user),
        "csrfToken": get_token(request),
        "reasoningPanel": preferences.effective_reasoning_panel(),
        "sendKey": preferences.send_key,
        "share": sharing.share_state(request, conversation) if conversation else None,
    }
    response = render(
        request,
        "chat/chat.html",
        {
            "preferences": preferences,
            "conversation": conversation,
            "conversations": conversations,
            "models": models,
            "selected_model": selected,
            "page_data": page_data,
            **_team_context(request.user, conversation),
        },
    )
    if language:
        remember_language(response, language)
    return response


def _team_context(user, conversation):
    """Return the teams the user can bill and the conversations shared with those teams."""
    teams = teams_of(user)
    if not teams:
        return {}
    selected = next(
        (team for team in teams if conversation and team.pk == conversation.team_id), teams[0]
    )
    shared = (
        Conversation.objects.filter(shared_with_team__in=teams)
        .exclude(owner=user)
        .select_related("shared_with_team")
        .only("id", "title", "shared_with_team__name", "updated_at")
        .order_by("-updated_at")[:TEAM_SHARED_CONVERSATIONS]
    )
    return {"teams": teams, "selected_team": selected, "team_shared": shared}


def _selected_model(user, conversation):
    """Return the model the next send would use, or None when the plan allows none."""
    try:
        return catalog.model_for_send(user, None, conversation)
    except catalog.ModelUnavailable:
        return None


def _page_strings():
    """Return the texts the chat script shows, in the request's language."""
    return {
        "thinking": _("Thinking…"),
        "thinkingFor": _("Thinking for %(seconds)s s"),
        "thoughtFor": _("Thought for %(seconds)s s"),
        "reasoning": _("Reasoning"),
        "queued": _("Waiting for the model…"),
        "waiting": _("The model server is busy; retry %(attempt)s in %(seconds)s s…"),
        "stopped": _("Stopped."),
        "truncated": _("The reply reached its length limit and was cut off."),
        "interrupted": _("The reply was interrupted."),
        "failed": _("The reply failed."),
        "retry": _("Retry"),
        "copy": _("Copy"),
        "copied": _("Copied"),
        "copyReasoning": _("Copy reasoning"),
        "groupPinned": _("Pinned"),
        "groupToday": _("Today"),
        "groupYesterday": _("Yesterday"),
        "groupWeek": _("Previous 7 days"),
        "groupOlder": _("Older"),
        "searchResults": _("Search results"),
        "noMatches": _("No conversation matches “%(query)s”."),
        "moreActions": _("More actions for “%(title)s”"),
        "rename": _("Rename"),
        "renameLabel": _("New name for the conversation"),
        "pin": _("Pin"),
        "unpin": _("Unpin"),
        "delete": _("Delete"),
        "deleted": _("“%(title)s” deleted."),
        "undo": _("Undo"),
        "actionFailed": _("That did not work: %(error)s Try again."),
        "loadingMore": _("Loading more…"),
        "copyAnswer": _("Copy the answer"),
        "regenerate": _("Regenerate"),
        "regenerateLabel": _("Write a new answer to this question"),
        "edit": _("Edit"),
        "editLabel": _("Edit this message and send it again"),
        "cancel": _("Cancel"),
        "saveAndSend": _("Save and send"),
        "versionOf": _("%(index)s / %(count)s"),
        "previousVersion": _("Previous version"),
        "nextVersion": _("Next version"),
        "connecting": _("Connecting…"),
        "reconnecting": _("Connection lost. Reconnecting…"),
        "tooLong": _("The message has %(count)s characters; the limit is %(limit)s."),
        "newChat": _("New chat"),
        "untitled": _("Untitled"),
        "quotaLeft": _("%(count)s messages left today, resets at %(time)s"),
        "quotaLeftOne": _("1 message left today, resets at %(time)s"),
        "quotaNone": _("No messages left today; the count resets at %(time)s"),
        "blockedFor": _("Sending is possible again in %(seconds)s s."),
        "replyComplete": _("The answer is complete."),
        "shareCreated": _("Link created. Anyone with it can read this conversation."),
        "shareUpdated": _("Saved. The link stays the same."),
        "shareRevoked": _("Link revoked. It now shows a “not available” page."),
        "linkCopied": _("Link copied."),
        "notSentQuota": _(
            "Not sent: today's messages are used up. Your text stays here; send it after %(time)s."
        ),
    }
