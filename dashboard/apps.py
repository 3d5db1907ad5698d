from django.apps import AppConfig
from django.db.models.signals import post_migrate
from django.utils.translation import gettext_lazy as _


class DashboardConfig(AppConfig):
    name = "dashboard"
    verbose_name = _("usage dashboard")

    def ready(self):
        from .rollups import rebuild_if_stale

        post_migrate.connect(rebuild_if_stale, sender=self)
