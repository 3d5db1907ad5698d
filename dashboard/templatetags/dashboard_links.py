from django import template

from dashboard.scope import scope_for

register = template.Library()


@register.filter
def can_open_dashboard(user) -> bool:
    """Return whether `user` may open the usage dashboard: staff or a team's owner or admin."""
    return scope_for(user) is not None
