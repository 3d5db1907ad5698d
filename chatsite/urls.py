from django.contrib import admin
from django.shortcuts import redirect
from django.templatetags.static import static
from django.urls import include, path
from django.views.generic import RedirectView

from dashboard.metrics import metrics


def favicon(request):
    # Browsers ask for /favicon.ico on pages without an icon link, such as the admin.
    # The static URL is looked up per request: the manifest may not exist at import.
    return redirect(static("favicon.svg"), permanent=True)


urlpatterns = [
    path("favicon.ico", favicon),
    path("", RedirectView.as_view(pattern_name="chat:index", permanent=False)),
    path("accounts/", include("accounts.urls")),
    path("chat/", include("chat.urls")),
    path("teams/", include("teams.urls")),
    path("i18n/", include("django.conf.urls.i18n")),
    path("admin/", admin.site.urls),
    path("dashboard/", include("dashboard.urls")),
    path("metrics", metrics, name="metrics"),
]
