from django.apps import AppConfig
from django.db.models.signals import post_migrate


class AccountsConfig(AppConfig):
    name = "accounts"

    def ready(self):
        # Importing models is allowed from ready() on, which is why this is here.
        from . import defaults

        post_migrate.connect(defaults.ensure_default_plans, sender=self)
