"""Who may see and do what in a team; every team page and the dashboard ask here."""

from .models import Membership, Team

MANAGER_ROLES = (Membership.Role.OWNER, Membership.Role.ADMIN)


def membership_for(user, team_id) -> Membership | None:
    if not user.is_authenticated:
        return None
    return Membership.objects.select_related("team").filter(user=user, team_id=team_id).first()


def member_team_ids(user) -> set[int]:
    """Return the ids of the teams the user belongs to, in any role."""
    if not user.is_authenticated:
        return set()
    return set(Membership.objects.filter(user=user).values_list("team_id", flat=True))


def managed_team_ids(user) -> set[int]:
    """Return the ids of the teams whose owner or admin the user is."""
    if not user.is_authenticated:
        return set()
    return set(
        Membership.objects.filter(user=user, role__in=MANAGER_ROLES).values_list(
            "team_id", flat=True
        )
    )


def teams_of(user) -> list[Team]:
    """Return the user's teams, first joined first: the first is the default billing team."""
    if not user.is_authenticated:
        return []
    return [m.team for m in Membership.objects.select_related("team").filter(user=user)]
