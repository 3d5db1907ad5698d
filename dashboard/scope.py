"""Who may open the dashboard, and which part of the ledger they see.

Staff see everything. The owner or an admin of a team sees the same pages
restricted to the usage billed to their teams and to those teams' members.
Everyone else, ordinary users and guests included, gets 404, so the pages do
not reveal that they exist; anonymous visitors are sent to sign in.
"""

from dataclasses import dataclass
from functools import wraps

from django.contrib.auth.views import redirect_to_login
from django.http import Http404
from django.utils import timezone

from teams import access
from teams.models import Membership

from .filters import zone


@dataclass(frozen=True)
class Scope:
    """The viewer's reach: everything (staff) or the teams they manage."""

    is_staff: bool
    team_ids: frozenset[int]

    def may_see_team(self, team_id) -> bool:
        if self.is_staff:
            return True
        try:
            return int(team_id) in self.team_ids
        except (TypeError, ValueError):
            return False

    def may_see_user(self, user) -> bool:
        """Return whether the viewer may open `user`'s page: staff, or a manager of their team."""
        if self.is_staff:
            return True
        return Membership.objects.filter(user=user, team_id__in=self.team_ids).exists()


def scope_for(user) -> Scope | None:
    if not user.is_authenticated or not user.is_active or user.is_guest:
        return None
    if user.is_staff:
        return Scope(is_staff=True, team_ids=frozenset())
    managed = access.managed_team_ids(user)
    if not managed:
        return None
    return Scope(is_staff=False, team_ids=frozenset(managed))


def dashboard_view(view):
    """Let staff and team admins in, with `request.scope` set; send others away.

    Times on the pages are shown in the quota's time zone, the one the days follow.
    """

    @wraps(view)
    def wrapper(request, *args, **kwargs):
        if not request.user.is_authenticated:
            return redirect_to_login(request.get_full_path())
        scope = scope_for(request.user)
        if scope is None:
            raise Http404("No such page.")
        request.scope = scope
        with timezone.override(zone()):
            return view(request, *args, **kwargs)

    return wrapper


def staff_only(view):
    """Let only staff in; team admins and everyone else get 404. Use inside dashboard_view."""

    @wraps(view)
    def wrapper(request, *args, **kwargs):
        if not request.scope.is_staff:
            raise Http404("No such page.")
        return view(request, *args, **kwargs)

    return wrapper
