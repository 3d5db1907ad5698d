from django.urls import path

from . import staff_views, views

app_name = "chat"

urlpatterns = [
    path("", views.index, name="index"),
    path("<uuid:conversation_id>/", views.conversation, name="conversation"),
    path("staff/endpoints/", staff_views.endpoint_health, name="endpoint_health"),
]
