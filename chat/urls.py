from django.urls import path

from . import conversation_api, staff_views, views

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
]
