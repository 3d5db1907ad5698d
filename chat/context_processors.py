from django.conf import settings


def upstream(request):
    """Tell every page whether replies come from the built-in simulator."""
    return {"upstream_is_simulator": settings.UPSTREAM_IS_SIMULATOR}
