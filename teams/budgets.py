"""Team budgets: a monthly amount in US dollars or tokens for the team, and a cap per member.

Spend is read from the usage ledger (chat.UsageRecord rows billed to the
team), so it counts what replies really used. A send is refused once the
month's spend has reached the budget or the member's cap. The check runs with
the team's row locked, so concurrent sends from several members are
checked one after another. Replies already in flight finish, so the month
can overshoot the budget by at most their cost, as with the site's spend
caps.
"""

from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal

from django.db.models import Q, Sum
from django.utils import formats, timezone
from django.utils.translation import gettext as _

from accounts import quotas
from chat.models import UsageRecord

from .models import Membership, Team


@dataclass(frozen=True, slots=True)
class BudgetStatus:
    """A team's or member's spend this month against its limit (None: no limit)."""

    unit: str
    limit: Decimal | None
    spent: Decimal
    resets_on: date

    @property
    def remaining(self) -> Decimal | None:
        if self.limit is None:
            return None
        return max(Decimal(0), self.limit - self.spent)

    @property
    def exhausted(self) -> bool:
        return self.limit is not None and self.spent >= self.limit


def month_start(now: datetime) -> datetime:
    """Return when the budget month containing `now` began: the 1st at the quota reset time."""
    return quotas.day_start(quotas.quota_day(now).replace(day=1))


def next_month_start(now: datetime) -> datetime:
    first = quotas.quota_day(now).replace(day=1)
    if first.month == 12:
        return quotas.day_start(first.replace(year=first.year + 1, month=1))
    return quotas.day_start(first.replace(month=first.month + 1))


def spent(team: Team, since: datetime, user=None) -> Decimal:
    """Return what the team (or one member in it) has used since `since`, in the team's unit."""
    records = UsageRecord.objects.filter(team=team, created_at__gte=since)
    if user is not None:
        records = records.filter(user=user)
    return Decimal(records.aggregate(total=_spend_sum(team))["total"] or 0)


def spent_by_team_and_member(team: Team, since: datetime, user) -> tuple[Decimal, Decimal]:
    """Return what the whole team and what `user` in it have used since `since`, in one query."""
    totals = UsageRecord.objects.filter(team=team, created_at__gte=since).aggregate(
        team=_spend_sum(team), member=_spend_sum(team, Q(user=user))
    )
    return Decimal(totals["team"] or 0), Decimal(totals["member"] or 0)


def _spend_sum(team: Team, condition=None) -> Sum:
    """Return the sum of ledger rows in the team's unit; it is NULL over no rows."""
    if team.budget_unit == Team.BudgetUnit.TOKENS:
        return Sum(UsageRecord.total_tokens(), filter=condition)
    return Sum("cost_usd", filter=condition)


def team_status(team: Team, now=None) -> BudgetStatus:
    now = now or timezone.now()
    return BudgetStatus(
        team.budget_unit,
        team.monthly_budget,
        spent(team, month_start(now)),
        next_month_start(now).date(),
    )


def member_status(membership: Membership, now=None) -> BudgetStatus:
    now = now or timezone.now()
    team = membership.team
    return BudgetStatus(
        team.budget_unit,
        membership.effective_cap(),
        spent(team, month_start(now), user=membership.user),
        next_month_start(now).date(),
    )


def format_amount(unit: str, amount: Decimal) -> str:
    """Return an amount as people read it: "$12.30" or "12,300 tokens" in the active language."""
    amount = Decimal(amount)
    if unit == Team.BudgetUnit.TOKENS:
        return _("%(count)s tokens") % {
            "count": formats.number_format(int(amount), force_grouping=True)
        }
    return "$" + formats.number_format(amount.quantize(Decimal("0.01")), 2, force_grouping=True)


def check(user, team: Team, now=None) -> None:
    """Raise QuotaExceeded when the team's budget or the user's cap in it is used up.

    Call inside the send's transaction: the team's row is locked until it ends.
    The membership is read in the statement that takes the lock, so a member
    removed before the lock is refused.
    """
    now = now or timezone.now()
    membership = (
        Membership.objects.select_related("team")
        .select_for_update(of=("team",))
        .filter(team_id=team.pk, user=user)
        .first()
    )
    if membership is None:
        raise quotas.QuotaExceeded(
            "not_team_member",
            _("You are no longer a member of the team “%(team)s”. Pick another team.")
            % {"team": team.name},
        )
    team = membership.team
    resets_at = next_month_start(now)
    retry_after = int((resets_at - now).total_seconds()) + 1
    resets_on = formats.date_format(resets_at.date(), "DATE_FORMAT")

    team_spent, member_spent = spent_by_team_and_member(team, month_start(now), user)
    status = BudgetStatus(team.budget_unit, team.monthly_budget, team_spent, resets_at.date())
    if status.exhausted:
        raise quotas.QuotaExceeded(
            "team_budget_exhausted",
            _(
                "The team “%(team)s” has used its monthly budget of %(budget)s. "
                "It resets on %(date)s; a team admin can raise it."
            )
            % {
                "team": team.name,
                "budget": format_amount(team.budget_unit, status.limit),
                "date": resets_on,
            },
            retry_after=retry_after,
        )
    mine = BudgetStatus(
        team.budget_unit, membership.effective_cap(), member_spent, resets_at.date()
    )
    if mine.exhausted:
        raise quotas.QuotaExceeded(
            "team_member_cap",
            _(
                "You have used your monthly allowance of %(budget)s in the team “%(team)s”. "
                "It resets on %(date)s; a team admin can raise it."
            )
            % {
                "team": team.name,
                "budget": format_amount(team.budget_unit, mine.limit),
                "date": resets_on,
            },
            retry_after=retry_after,
        )
