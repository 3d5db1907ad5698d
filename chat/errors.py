"""Error codes of the chat protocol and the message a person sees for each.

The same codes appear in `error` events, in `message.done` events and on
stored messages (`Message.error_code`). The page receives these messages in
its language, so the browser shows them translated.
"""

from django.utils.translation import gettext_lazy as _

# Errors sent back for a client request (the `error` event).
REQUEST_ERRORS = {
    "invalid_input": _("The request was invalid."),
    "not_found": _("That conversation or message does not exist."),
    "busy": _(
        "A reply is still being written in this conversation. "
        "Wait for it to finish or stop it, then send again."
    ),
    "server_error": _("The server failed to handle the request. Try again in a moment."),
    "model_unavailable": _("That model is not available on your plan. Pick another one."),
    "quota_exceeded": _("You have used all messages of your plan for today."),
    "rate_limited": _("You are sending too fast. Wait a moment, then send again."),
    "budget_exhausted": _("The demo budget is used up for today."),
    "team_budget_exhausted": _("The team has used its monthly budget."),
    "team_member_cap": _("You have used your monthly allowance in this team."),
    "not_team_member": _("You are not a member of this conversation's team. Pick another team."),
}

# Errors that end a reply (the `error` of `message.done`).
REPLY_ERRORS = {
    "auth_failed": _(
        "The model server rejected the site's API key. Tell the site operator; "
        "retrying will not help."
    ),
    "insufficient_balance": _(
        "The site's account at the model provider has run out of credit. Tell the site operator."
    ),
    "invalid_request": _(
        "The model server rejected the request. Try a shorter message or a new conversation."
    ),
    "rate_limited": _("The model server is at capacity. Try again in a minute."),
    "overloaded": _("The model server is overloaded. Try again in a minute."),
    "server_error": _("The model server had an internal error. Try again in a minute."),
    "connect_failed": _("The site could not reach the model server. Try again in a minute."),
    "timeout": _("The model server stopped responding. Try again."),
    "stream_interrupted": _(
        "The connection to the model server broke during the reply. "
        "The text so far is kept; try again."
    ),
    "bad_response": _(
        "The model server sent a response the site could not read. Tell the site operator."
    ),
    "upstream_error": _("The model server reported an error during the reply. Try again."),
    "upstream_capacity": _(
        "The model server ran out of capacity during the reply. "
        "The text so far is kept; try again in a minute."
    ),
    "content_filter": _("The model provider's content filter stopped this reply."),
    "interrupted": _("The worker writing this reply was lost. The text so far is kept; try again."),
    "internal_error": _("The reply failed because of an error on the site. Try again."),
    "model_unavailable": _(
        "The model of this conversation was removed from the site. Pick another one."
    ),
}


def reply_error_message(code):
    return REPLY_ERRORS.get(code, REPLY_ERRORS["internal_error"])


class ChatError(Exception):
    """A request that cannot be carried out, sent to the client as an `error` event."""

    def __init__(self, code, detail=None, *, retry_after=None):
        super().__init__(code)
        self.code = code
        self.detail = str(detail) if detail is not None else str(REQUEST_ERRORS[code])
        self.retry_after = retry_after
        # For a send refused by a limit: the QuotaBlock fields to record.
        self.block = None
