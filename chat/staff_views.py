"""Pages for staff only."""

from dataclasses import dataclass

from django.contrib.admin.views.decorators import staff_member_required
from django.shortcuts import render
from django.views.decorators.http import require_http_methods

from . import catalog, health


@dataclass(frozen=True)
class EndpointRow:
    """Endpoint data shown on the health page before the checks run, without its key."""

    name: str
    slug: str
    kind: str
    base_url: str
    api_key_variable: str
    has_api_key: bool
    # The simulator takes any key, so its placeholder key is not shown as "set".
    is_simulator: bool
    # (display name, model id) of each active model.
    models: list[tuple[str, str]]


@staff_member_required
@require_http_methods(["GET", "POST"])
def endpoint_health(request):
    """Show the active endpoints and models; a POST checks them all and shows the results."""
    results = health.check_all() if request.method == "POST" else None
    rows = [
        EndpointRow(
            name=endpoint.name,
            slug=endpoint.slug,
            kind=endpoint.get_kind_display(),
            base_url=endpoint.resolved_base_url(),
            api_key_variable=endpoint.api_key_env,
            has_api_key=bool(endpoint.api_key()),
            is_simulator=endpoint.is_simulator,
            models=[
                (model.display_name, catalog.model_id_for(model)) for model in endpoint.models.all()
            ],
        )
        for endpoint in health.active_endpoints()
    ]
    context = {
        "endpoints": rows,
        "results": results,
        "probe_max_tokens": health.PROBE_MAX_TOKENS,
        "deadline_seconds": f"{health.CHECK_DEADLINE_SECONDS:g}",
    }
    return render(request, "chat/endpoint_health.html", context)
