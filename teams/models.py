import secrets

from django.conf import settings
from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _


class Team(models.Model):
    """People who chat on a shared budget; conversations are billed to one team or to nobody."""

    class BudgetUnit(models.TextChoices):
        USD = "usd", _("US dollars")
        TOKENS = "tokens", _("tokens")

    name = models.CharField(_("name"), max_length=100)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, related_name="+"
    )
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)
    # One unit for the team budget and the member caps; empty amounts mean no limit.
    budget_unit = models.CharField(
        _("budget unit"), max_length=8, choices=BudgetUnit.choices, default=BudgetUnit.USD
    )
    monthly_budget = models.DecimalField(
        _("monthly budget"), max_digits=14, decimal_places=4, null=True, blank=True
    )
    member_monthly_cap = models.DecimalField(
        _("monthly cap per member"), max_digits=14, decimal_places=4, null=True, blank=True
    )
    # Lower-case domains, one per line; people with a verified address there may join.
    allowed_domains = models.TextField(_("email domains admitted"), blank=True)

    class Meta:
        ordering = ["name"]
        verbose_name = _("team")
        verbose_name_plural = _("teams")

    def __str__(self):
        return self.name

    def domain_list(self) -> list[str]:
        return [line.strip().lower() for line in self.allowed_domains.splitlines() if line.strip()]


class Membership(models.Model):
    class Role(models.TextChoices):
        OWNER = "owner", _("owner")
        ADMIN = "admin", _("admin")
        MEMBER = "member", _("member")

    team = models.ForeignKey(Team, on_delete=models.CASCADE, related_name="memberships")
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="memberships"
    )
    role = models.CharField(_("role"), max_length=8, choices=Role.choices, default=Role.MEMBER)
    joined_at = models.DateTimeField(_("joined at"), auto_now_add=True)
    # Overrides the team's cap per member for this person; empty keeps the team's.
    monthly_cap = models.DecimalField(
        _("monthly cap"), max_digits=14, decimal_places=4, null=True, blank=True
    )

    class Meta:
        ordering = ["joined_at"]
        verbose_name = _("membership")
        verbose_name_plural = _("memberships")
        constraints = [
            models.UniqueConstraint(fields=["team", "user"], name="teams_membership_unique"),
        ]

    def __str__(self):
        return f"{self.user} in {self.team} ({self.role})"

    @property
    def can_manage(self) -> bool:
        return self.role in (self.Role.OWNER, self.Role.ADMIN)

    def effective_cap(self):
        return self.monthly_cap if self.monthly_cap is not None else self.team.member_monthly_cap


def new_invite_token() -> str:
    return secrets.token_urlsafe(24)


class Invite(models.Model):
    """A link that joins whoever opens it to a team with a role, until it expires or is used up."""

    team = models.ForeignKey(Team, on_delete=models.CASCADE, related_name="invites")
    token = models.CharField(max_length=64, unique=True, default=new_invite_token, editable=False)
    role = models.CharField(
        _("role"),
        max_length=8,
        choices=[(Membership.Role.ADMIN, _("admin")), (Membership.Role.MEMBER, _("member"))],
        default=Membership.Role.MEMBER,
    )
    # Empty means any number of people may use the link.
    max_uses = models.PositiveIntegerField(_("uses allowed"), null=True, blank=True)
    uses = models.PositiveIntegerField(_("uses"), default=0)
    expires_at = models.DateTimeField(_("expires at"))
    revoked_at = models.DateTimeField(_("revoked at"), null=True, blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, related_name="+"
    )
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)

    class Meta:
        ordering = ["-created_at"]
        verbose_name = _("invite")
        verbose_name_plural = _("invites")

    def __str__(self):
        return f"{self.team} invite ({self.role})"

    def state(self, now=None) -> str:
        """Return "active", "revoked", "expired" or "used_up"."""
        now = now or timezone.now()
        if self.revoked_at is not None:
            return "revoked"
        if self.expires_at <= now:
            return "expired"
        if self.max_uses is not None and self.uses >= self.max_uses:
            return "used_up"
        return "active"
