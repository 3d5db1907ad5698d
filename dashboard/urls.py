from django.urls import path

from . import views

app_name = "dashboard"

urlpatterns = [
    path("", views.overview, name="overview"),
    path("users/", views.users, name="users"),
    path("users/export.csv", views.users_csv, name="users_csv"),
    path("users/<int:user_id>/", views.user_detail, name="user"),
    path("days/export.csv", views.days_csv, name="days_csv"),
    path("models/", views.models, name="models"),
    path("errors/", views.errors, name="errors"),
    path("conversations/<uuid:conversation_id>/", views.conversation, name="conversation"),
]
