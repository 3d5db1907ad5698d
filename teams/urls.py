from django.urls import path

from . import views

app_name = "teams"

urlpatterns = [
    path("", views.team_list, name="list"),
    path("new/", views.team_create, name="create"),
    path("invite/<str:token>/", views.invite_accept, name="invite"),
    path("join/<str:token>/", views.domain_join, name="domain_join"),
    path("share/<uuid:conversation_id>/", views.share, name="share"),
    path("<int:team_id>/", views.team_detail, name="detail"),
    path("<int:team_id>/settings/", views.team_settings, name="settings"),
    path("<int:team_id>/invites/", views.invite_create, name="invite_create"),
    path(
        "<int:team_id>/invites/<int:invite_id>/revoke/", views.invite_revoke, name="invite_revoke"
    ),
    path("<int:team_id>/members/<int:member_id>/", views.member_update, name="member_update"),
    path(
        "<int:team_id>/members/<int:member_id>/remove/", views.member_remove, name="member_remove"
    ),
    path("<int:team_id>/leave/", views.team_leave, name="leave"),
    path("<int:team_id>/delete/", views.team_delete, name="delete"),
    path("<int:team_id>/join-by-domain/", views.domain_join_request, name="domain_join_request"),
    path("<int:team_id>/shared/<uuid:conversation_id>/", views.shared_conversation, name="shared"),
]
