from django.urls import path

from . import conversation_api, preferences_views, sharing, staff_views, transfer_views, views

app_name = "chat"

urlpatterns = [
    path("", views.index, name="index"),
    path("<uuid:conversation_id>/", views.conversation, name="conversation"),
    path("staff/endpoints/", staff_views.endpoint_health, name="endpoint_health"),
    path("api/conversations/", conversation_api.conversation_list, name="conversation_list"),
    path(
        "api/conversations/<uuid:conversation_id>/",
        conversation_api.conversation_update,
        name="conversation_update",
    ),
    path(
        "api/conversations/<uuid:conversation_id>/delete/",
        conversation_api.conversation_delete,
        name="conversation_delete",
    ),
    path(
        "api/conversations/<uuid:conversation_id>/restore/",
        conversation_api.conversation_restore,
        name="conversation_restore",
    ),
    path(
        "api/conversations/<uuid:conversation_id>/share/",
        sharing.share_link,
        name="share_link",
    ),
    path(
        "api/conversations/<uuid:conversation_id>/share/revoke/",
        sharing.share_revoke,
        name="share_revoke",
    ),
    path("shared/<str:token>/", sharing.shared_page, name="shared"),
    path(
        "<uuid:conversation_id>/export.json",
        transfer_views.export_json,
        name="export_json",
    ),
    path(
        "<uuid:conversation_id>/export.md",
        transfer_views.export_markdown,
        name="export_markdown",
    ),
    path("import/", transfer_views.import_conversation, name="import"),
    path("preferences/", preferences_views.preferences, name="preferences"),
    path("language/", preferences_views.set_language, name="set_language"),
]
