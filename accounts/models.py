import uuid

from django.contrib.auth.models import AbstractBaseUser, BaseUserManager, PermissionsMixin
from django.db import models
from django.db.models.functions import Lower
from django.utils import timezone
from django.utils.translation import gettext_lazy as _


class UserManager(BaseUserManager):
    use_in_migrations = True

    def _create_user(self, email, password, **extra_fields):
        if not email:
            raise ValueError("An email address is required to create a user.")
        user = self.model(email=self.normalize_email(email).lower(), **extra_fields)
        user.set_password(password)
        user.save(using=self._db)
        return user

    def create_user(self, email, password=None, **extra_fields):
        extra_fields.setdefault("is_staff", False)
        extra_fields.setdefault("is_superuser", False)
        return self._create_user(email, password, **extra_fields)

    def create_guest(self):
        """Create an account for an anonymous visitor of the public demo."""
        user = self.model(email=f"guest-{uuid.uuid4().hex}@guest.invalid", is_guest=True)
        user.set_unusable_password()
        user.save(using=self._db)
        return user

    def create_superuser(self, email, password=None, **extra_fields):
        extra_fields.setdefault("is_staff", True)
        extra_fields.setdefault("is_superuser", True)
        return self._create_user(email, password, **extra_fields)

    def get_by_natural_key(self, username):
        return self.get(email__iexact=username)


class Plan(models.Model):
    """A group of users with the models it may use and its limits (PlanLimit rows)."""

    GUEST = "guest"
    FREE = "free"
    TEAM = "team"
    STAFF = "staff"

    slug = models.SlugField(_("slug"), unique=True)
    name = models.CharField(_("name"), max_length=100)

    class Meta:
        ordering = ["name"]
        verbose_name = _("plan")
        verbose_name_plural = _("plans")

    def __str__(self):
        return self.name


class ModelClass(models.TextChoices):
    """Classes of models that quotas count separately."""

    THINKING = "thinking", _("thinking")
    INSTANT = "instant", _("instant")


class PlanLimit(models.Model):
    """A plan's caps for one model class; an empty cap means no limit."""

    plan = models.ForeignKey(Plan, on_delete=models.CASCADE, related_name="limits")
    model_class = models.CharField(_("model class"), max_length=16, choices=ModelClass.choices)
    messages_per_day = models.PositiveIntegerField(_("messages a day"), null=True, blank=True)
    messages_per_minute = models.PositiveIntegerField(_("messages a minute"), null=True, blank=True)
    max_in_flight = models.PositiveIntegerField(
        _("replies in flight at once"), default=1, help_text=_("Replies queued or streaming.")
    )
    max_input_chars = models.PositiveIntegerField(_("maximum input (characters)"), default=20_000)
    max_output_tokens = models.PositiveIntegerField(
        _("maximum output tokens"), null=True, blank=True
    )

    class Meta:
        verbose_name = _("plan limit")
        verbose_name_plural = _("plan limits")
        constraints = [
            models.UniqueConstraint(
                fields=["plan", "model_class"], name="accounts_limit_plan_class_unique"
            ),
        ]

    def __str__(self):
        return f"{self.plan} · {self.get_model_class_display()}"


class QuotaCounter(models.Model):
    """Messages counted against a daily cap: one row per subject, model class and quota day.

    `subject` is "user:<id>" (later also guest keys). Reservations change
    `used` with single conditional UPDATE statements, so concurrent sends
    from any number of sockets and processes never pass the cap.
    """

    subject = models.CharField(max_length=200)
    model_class = models.CharField(max_length=16, choices=ModelClass.choices)
    day = models.DateField()
    used = models.PositiveIntegerField(default=0)

    class Meta:
        verbose_name = _("quota counter")
        verbose_name_plural = _("quota counters")
        constraints = [
            models.UniqueConstraint(
                fields=["subject", "model_class", "day"], name="accounts_quota_counter_unique"
            ),
        ]

    def __str__(self):
        return f"{self.subject} {self.model_class} {self.day}: {self.used}"


class User(AbstractBaseUser, PermissionsMixin):
    """A person who signs in with an email address and a password."""

    email = models.EmailField(_("email address"), unique=True)
    display_name = models.CharField(_("display name"), max_length=150, blank=True)
    is_staff = models.BooleanField(_("staff status"), default=False)
    is_active = models.BooleanField(_("active"), default=True)
    # A visitor of the public demo without an account; signing up turns the
    # same row into a normal account, keeping conversations and usage.
    is_guest = models.BooleanField(_("guest"), default=False)
    date_joined = models.DateTimeField(_("date joined"), default=timezone.now)
    plan = models.ForeignKey(
        Plan,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="users",
        verbose_name=_("plan"),
        help_text=_(
            "Empty means the free plan, or the team plan for members of a team; "
            "staff always have the staff plan."
        ),
    )

    objects = UserManager()

    EMAIL_FIELD = "email"
    USERNAME_FIELD = "email"
    REQUIRED_FIELDS = []

    class Meta:
        verbose_name = _("user")
        verbose_name_plural = _("users")
        constraints = [
            models.UniqueConstraint(Lower("email"), name="accounts_user_email_ci_unique"),
        ]

    def __str__(self):
        return self.email

    def get_short_name(self):
        return self.display_name or self.email.split("@", 1)[0]

    def effective_plan_slug(self) -> str:
        if self.is_staff:
            return Plan.STAFF
        if self.is_guest:
            return Plan.GUEST
        if self.plan_id is not None:
            return self.plan.slug
        # Team members send on the team plan; their team's budget bounds it.
        if self.memberships.exists():
            return Plan.TEAM
        return Plan.FREE


LIMIT_FIELDS = (
    "messages_per_day",
    "messages_per_minute",
    "max_in_flight",
    "max_input_chars",
    "max_output_tokens",
)


class UserLimitOverride(models.Model):
    """Staff's caps for one user and model class; an empty field keeps the plan's value."""

    user = models.ForeignKey(User, on_delete=models.CASCADE, related_name="limit_overrides")
    model_class = models.CharField(_("model class"), max_length=16, choices=ModelClass.choices)
    messages_per_day = models.PositiveIntegerField(_("messages a day"), null=True, blank=True)
    messages_per_minute = models.PositiveIntegerField(_("messages a minute"), null=True, blank=True)
    max_in_flight = models.PositiveIntegerField(
        _("replies in flight at once"), null=True, blank=True
    )
    max_input_chars = models.PositiveIntegerField(
        _("maximum input (characters)"), null=True, blank=True
    )
    max_output_tokens = models.PositiveIntegerField(
        _("maximum output tokens"), null=True, blank=True
    )

    class Meta:
        verbose_name = _("limit override")
        verbose_name_plural = _("limit overrides")
        constraints = [
            models.UniqueConstraint(
                fields=["user", "model_class"], name="accounts_override_user_class_unique"
            ),
        ]

    def __str__(self):
        return f"{self.user} · {self.get_model_class_display()}"


class LimitChange(models.Model):
    """One changed cap: who changed which limit, when, from what to what."""

    changed_by = models.ForeignKey(
        User, on_delete=models.SET_NULL, null=True, related_name="+", verbose_name=_("changed by")
    )
    changed_at = models.DateTimeField(_("changed at"), auto_now_add=True)
    # What was changed, as "plan free/thinking" or "user 42/thinking".
    target = models.CharField(_("target"), max_length=200)
    field = models.CharField(_("field"), max_length=64)
    old_value = models.CharField(_("old value"), max_length=64, blank=True)
    new_value = models.CharField(_("new value"), max_length=64, blank=True)

    class Meta:
        ordering = ["-changed_at"]
        verbose_name = _("limit change")
        verbose_name_plural = _("limit changes")

    def __str__(self):
        return f"{self.target} {self.field}: {self.old_value} -> {self.new_value}"


class SpendCap(models.Model):
    """A daily budget in US dollars; once the day's spend reaches it, new sends are refused.

    With no plans selected the cap covers the whole site; otherwise only the
    spend and the users of the selected plans.
    """

    name = models.CharField(_("name"), max_length=100)
    amount_usd = models.DecimalField(_("US dollars a day"), max_digits=12, decimal_places=2)
    plans = models.ManyToManyField(
        Plan,
        blank=True,
        related_name="spend_caps",
        verbose_name=_("plans"),
        help_text=_("None selected means the whole site."),
    )
    is_active = models.BooleanField(_("active"), default=True)

    class Meta:
        verbose_name = _("spend cap")
        verbose_name_plural = _("spend caps")

    def __str__(self):
        return f"{self.name} (${self.amount_usd})"


class QuotaBlock(models.Model):
    """One send refused by a limit: a plan's cap, a spend cap or a team budget.

    Written outside the refused send's transaction, so the dashboard can
    count blocks per user, team and day.
    """

    user = models.ForeignKey(User, on_delete=models.SET_NULL, null=True, related_name="+")
    team = models.ForeignKey("teams.Team", on_delete=models.SET_NULL, null=True, related_name="+")
    plan = models.CharField(max_length=50, blank=True)
    model_class = models.CharField(max_length=16, blank=True)
    code = models.CharField(max_length=64)
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)

    class Meta:
        verbose_name = _("quota block")
        verbose_name_plural = _("quota blocks")
        indexes = [
            models.Index(fields=["user", "created_at"], name="accounts_block_user_created"),
            models.Index(fields=["team", "created_at"], name="accounts_block_team_created"),
        ]

    def __str__(self):
        return f"{self.user_id} {self.code} {self.created_at:%Y-%m-%d %H:%M}"
