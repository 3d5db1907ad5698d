"""Download a conversation as Markdown or JSON, and the form that imports a JSON export."""

import json

from django import forms
from django.http import Http404, HttpResponse
from django.shortcuts import redirect, render
from django.utils.http import content_disposition_header
from django.utils.text import slugify
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views.decorators.http import require_GET, require_http_methods

from accounts.guests import login_or_guest

from . import transfer
from .conversation_api import visible_conversations
from .models import Conversation
from .sharing import newest_branch


def _own_conversation(user, conversation_id):
    try:
        return visible_conversations(user).get(pk=conversation_id)
    except Conversation.DoesNotExist:
        raise Http404(_("Conversation not found.")) from None


def _download(body, conversation, extension, content_type):
    # slugify keeps Chinese letters with allow_unicode; the header encodes them (RFC 6266).
    stem = slugify(conversation.title, allow_unicode=True)[:60] or "conversation"
    response = HttpResponse(body, content_type=content_type)
    response["Content-Disposition"] = content_disposition_header(True, f"{stem}.{extension}")
    response["Cache-Control"] = "private, no-store"
    return response


@login_or_guest
@require_GET
def export_json(request, conversation_id):
    conversation = _own_conversation(request.user, conversation_id)
    body = json.dumps(transfer.export_data(conversation), ensure_ascii=False, indent=2)
    return _download(body + "\n", conversation, "json", "application/json; charset=utf-8")


@login_or_guest
@require_GET
def export_markdown(request, conversation_id):
    conversation = _own_conversation(request.user, conversation_id)
    body = transfer.export_markdown(conversation, newest_branch(conversation))
    return _download(body, conversation, "md", "text/markdown; charset=utf-8")


class ImportForm(forms.Form):
    file = forms.FileField(
        label=gettext_lazy("JSON export"),
        help_text=gettext_lazy("A .json file from Export › JSON, at most 5 MB."),
        widget=forms.ClearableFileInput(attrs={"accept": ".json,application/json"}),
    )

    def clean_file(self):
        upload = self.cleaned_data["file"]
        if upload.size > transfer.IMPORT_MAX_BYTES:
            raise forms.ValidationError(
                _("The file has %(size)s bytes; the limit is %(limit)s bytes.")
                % {"size": upload.size, "limit": transfer.IMPORT_MAX_BYTES}
            )
        try:
            self.parsed = transfer.parse_import(upload.read())
        except transfer.ImportFileError as error:
            raise forms.ValidationError(str(error)) from None
        return upload


@login_or_guest
@require_http_methods(["GET", "POST"])
def import_conversation(request):
    if (
        request.method == "POST"
        and _declared_length(request) > transfer.IMPORT_MAX_BYTES + 64 * 1024
    ):
        # Far too large for any export: answer before parsing the multipart body.
        error = _("The file is larger than the limit of %(limit)s bytes; choose a JSON export.") % {
            "limit": transfer.IMPORT_MAX_BYTES
        }
        context = {"form": ImportForm(), "upload_error": error}
        return render(request, "chat/import.html", context, status=413)
    form = ImportForm(request.POST, request.FILES) if request.method == "POST" else ImportForm()
    if form.is_bound and form.is_valid():
        title, messages = form.parsed
        conversation = transfer.store_import(request.user, title, messages)
        return redirect(conversation.get_absolute_url())
    status = 400 if request.method == "POST" else 200
    return render(request, "chat/import.html", {"form": form}, status=status)


def _declared_length(request) -> int:
    try:
        return int(request.META.get("CONTENT_LENGTH") or 0)
    except ValueError:
        return 0
