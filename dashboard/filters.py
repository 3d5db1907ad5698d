"""The dashboard's filters: a time range in quota days, and a plan, team and model.

Days follow the quota day (QUOTA_TIME_ZONE, starting at QUOTA_RESET_AT), so
"today" on the dashboard is the day the message counters and spend caps count.
"""

from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from django import forms
from django.conf import settings
from django.db.models import Q
from django.http import Http404
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from accounts import quotas
from accounts.models import Plan
from chat.models import ChatModel
from teams.models import Team

# The longest custom range, so one request cannot ask for years of hourly rows.
MAX_RANGE_DAYS = 366


def zone() -> ZoneInfo:
    return ZoneInfo(settings.QUOTA_TIME_ZONE)


def reset_time() -> time:
    hours, minutes = map(int, settings.QUOTA_RESET_AT.split(":"))
    return time(hours, minutes)


def day_start(day: date) -> datetime:
    """Return the moment quota day `day` starts, as accounts.quotas counts it."""
    return datetime.combine(day, reset_time(), tzinfo=zone())


@dataclass(frozen=True)
class Period:
    """A half-open range [start, end) of whole quota days, or of today so far."""

    first_day: date
    last_day: date
    start: datetime
    end: datetime
    hourly: bool

    @property
    def days(self) -> list[date]:
        count = (self.last_day - self.first_day).days + 1
        return [self.first_day + timedelta(days=offset) for offset in range(count)]

    @property
    def hours(self) -> list[datetime]:
        """Return the local start of every hour of a one-day period."""
        local_start = self.start.astimezone(zone()).replace(minute=0, second=0, microsecond=0)
        return [local_start + timedelta(hours=offset) for offset in range(24)]


def period_for(range_name: str, first: date | None, last: date | None, now=None) -> Period:
    now = now or timezone.now()
    today = quotas.quota_day(now)
    if range_name == "custom" and first and last:
        start_day, end_day = first, last
    elif range_name == "7d":
        start_day, end_day = today - timedelta(days=6), today
    elif range_name == "30d":
        start_day, end_day = today - timedelta(days=29), today
    else:
        start_day, end_day = today, today
    return Period(
        first_day=start_day,
        last_day=end_day,
        start=day_start(start_day),
        end=day_start(end_day + timedelta(days=1)),
        hourly=start_day == end_day,
    )


class FilterForm(forms.Form):
    """The filters every dashboard page takes from its query string."""

    RANGES = [
        ("today", _("Today")),
        ("7d", _("Last 7 days")),
        ("30d", _("Last 30 days")),
        ("custom", _("Custom")),
    ]

    range = forms.ChoiceField(label=_("Time range"), choices=RANGES, required=False)
    start = forms.DateField(
        label=_("From"), required=False, widget=forms.DateInput(attrs={"type": "date"})
    )
    end = forms.DateField(
        label=_("To"), required=False, widget=forms.DateInput(attrs={"type": "date"})
    )
    plan = forms.ChoiceField(label=_("Plan"), required=False)
    team = forms.TypedChoiceField(label=_("Team"), required=False, coerce=int, empty_value=None)
    model = forms.TypedChoiceField(label=_("Model"), required=False, coerce=int, empty_value=None)

    def __init__(self, data, *, scope):
        super().__init__(data)
        self.scope = scope
        self.fields["plan"].choices = [("", _("All plans"))] + [
            (plan.slug, plan.name) for plan in Plan.objects.order_by("name")
        ]
        teams = Team.objects.order_by("name")
        if not scope.is_staff:
            teams = teams.filter(pk__in=scope.team_ids)
        self.fields["team"].choices = [
            ("", _("All teams") if scope.is_staff else _("All my teams"))
        ]
        self.fields["team"].choices += [(team.pk, team.name) for team in teams]
        self.fields["model"].choices = [("", _("All models"))] + [
            (model.pk, model.display_name)
            for model in ChatModel.objects.order_by("sort_order", "display_name")
        ]

    def clean(self):
        data = super().clean()
        if data.get("range") == "custom":
            start, end = data.get("start"), data.get("end")
            if not start or not end:
                raise forms.ValidationError(_("A custom range needs both dates, From and To."))
            if start > end:
                raise forms.ValidationError(_("The From date is after the To date; swap them."))
            if (end - start).days >= MAX_RANGE_DAYS:
                raise forms.ValidationError(
                    _("Pick a range of at most %(days)d days.") % {"days": MAX_RANGE_DAYS}
                )
        return data


@dataclass
class Filters:
    """Validated filters and the conditions they put on ledger and block rows."""

    period: Period
    plan: str = ""
    team_id: int | None = None
    model: ChatModel | None = None
    # Teams the viewer may see; None means every team and no team (staff).
    team_ids: frozenset[int] | None = None
    query: dict = field(default_factory=dict)

    def usage_q(self, prefix="") -> Q:
        """Return the conditions on UsageRecord rows, for the period and every filter."""
        q = Q(**{f"{prefix}created_at__gte": self.period.start}) & Q(
            **{f"{prefix}created_at__lt": self.period.end}
        )
        return q & self.usage_q_without_period(prefix)

    def usage_q_without_period(self, prefix="") -> Q:
        q = Q()
        if self.plan:
            q &= Q(**{f"{prefix}plan": self.plan})
        if self.team_id is not None:
            q &= Q(**{f"{prefix}team_id": self.team_id})
        elif self.team_ids is not None:
            q &= Q(**{f"{prefix}team_id__in": self.team_ids})
        if self.model is not None:
            q &= Q(**{f"{prefix}chat_model_id": self.model.pk})
        return q

    def block_q(self) -> Q:
        """Return the conditions on QuotaBlock rows.

        A block happens before any model runs and records only the model's
        class, so a model filter selects the blocks of that model's class.
        """
        q = Q(created_at__gte=self.period.start, created_at__lt=self.period.end)
        if self.plan:
            q &= Q(plan=self.plan)
        if self.team_id is not None:
            q &= Q(team_id=self.team_id)
        elif self.team_ids is not None:
            q &= Q(team_id__in=self.team_ids)
        if self.model is not None:
            q &= Q(model_class=self.model.model_class)
        return q


def filters_from_request(request, scope):
    """Return (form, filters); invalid input falls back to today with the form's errors shown.

    Raise Http404 when a team admin asks for a team they do not manage.
    """
    requested_team = request.GET.get("team")
    if requested_team and not scope.may_see_team(requested_team):
        raise Http404("No such team.")
    form = FilterForm(request.GET or None, scope=scope)
    data = form.cleaned_data if form.is_bound and form.is_valid() else {}
    period = period_for(data.get("range") or "today", data.get("start"), data.get("end"))
    model = None
    if data.get("model"):
        model = ChatModel.objects.filter(pk=data["model"]).first()
    team_ids = None if scope.is_staff else frozenset(scope.team_ids)
    filters = Filters(
        period=period,
        plan=data.get("plan") or "",
        team_id=data.get("team"),
        model=model,
        team_ids=team_ids,
        query={key: value for key, value in request.GET.items() if key in form.fields},
    )
    return form, filters
