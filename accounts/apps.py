from django.apps import AppConfig
from django.db.models.signals import post_migrate
from django.utils.translation import gettext_lazy as _


class AccountsConfig(AppConfig):
    name = "accounts"
    verbose_name = _("Accounts")

    def ready(self):
        # Importing models is allowed from ready() on, which is why this is here.
        from . import defaults

        post_migrate.connect(defaults.ensure_default_plans, sender=self)
