from django.conf import settings
from django.db import models
from django.utils.translation import gettext_lazy as _


class ReasoningPanel(models.TextChoices):
    # Open while the model reasons, closed once the answer starts.
    COLLAPSED = "collapsed", _("collapse when the answer starts")
    EXPANDED = "expanded", _("keep open")


class SiteSettings(models.Model):
    """Site-wide defaults that staff edit in the admin; a single row with pk=1."""

    reasoning_panel = models.CharField(
        _("reasoning panel default"),
        max_length=16,
        choices=ReasoningPanel.choices,
        default=ReasoningPanel.COLLAPSED,
        help_text=_("How the reasoning panel behaves for users who have not chosen."),
    )

    class Meta:
        verbose_name = _("site settings")
        verbose_name_plural = _("site settings")

    def __str__(self):
        return str(_("Site settings"))

    @classmethod
    def current(cls) -> "SiteSettings":
        settings_row, _created = cls.objects.get_or_create(pk=1)
        return settings_row


class Preferences(models.Model):
    """One user's choices for the chat page; an empty value follows the default."""

    class Theme(models.TextChoices):
        SYSTEM = "system", _("Follow the system")
        LIGHT = "light", _("Light")
        DARK = "dark", _("Dark")

    class SendKey(models.TextChoices):
        ENTER = "enter", _("Enter sends, Shift+Enter adds a line")
        CTRL_ENTER = "ctrl_enter", _("Ctrl+Enter sends, Enter adds a line")

    user = models.OneToOneField(
        settings.AUTH_USER_MODEL,
        on_delete=models.CASCADE,
        primary_key=True,
        related_name="chat_preferences",
    )
    # Empty: the browser's language, as for visitors.
    language = models.CharField(_("language"), max_length=16, blank=True)
    theme = models.CharField(_("theme"), max_length=16, choices=Theme.choices, default=Theme.SYSTEM)
    # Empty: the site default in SiteSettings.
    reasoning_panel = models.CharField(
        _("reasoning panel"), max_length=16, choices=ReasoningPanel.choices, blank=True
    )
    send_key = models.CharField(
        _("send key"), max_length=16, choices=SendKey.choices, default=SendKey.ENTER
    )

    class Meta:
        verbose_name = _("chat preferences")
        verbose_name_plural = _("chat preferences")

    def __str__(self):
        return str(self.user)

    @classmethod
    def for_user(cls, user) -> "Preferences":
        """Return the user's stored preferences, or unsaved defaults."""
        if not getattr(user, "pk", None):
            return cls()
        return cls.objects.filter(user=user).first() or cls(user=user)

    def effective_reasoning_panel(self) -> str:
        return self.reasoning_panel or SiteSettings.current().reasoning_panel
