from django.apps import AppConfig
from django.db.models.signals import post_migrate
from django.utils.translation import gettext_lazy as _


class ChatConfig(AppConfig):
    name = "chat"
    verbose_name = _("Chat")

    def ready(self):
        # Importing models is allowed from ready() on, which is why this is here.
        from . import catalog

        post_migrate.connect(catalog.sync_after_migrate, sender=self)
