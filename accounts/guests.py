"""Guests of the public demo: their accounts and their client address."""

import ipaddress
from functools import wraps

from django.conf import settings
from django.contrib.auth import login
from django.contrib.auth.views import redirect_to_login

from .models import User


def client_ip(forwarded_for: str, peer: str | None) -> str | None:
    """Return the client's address, trusting TRUSTED_PROXY_COUNT proxies in X-Forwarded-For."""
    count = settings.TRUSTED_PROXY_COUNT
    if count > 0 and forwarded_for:
        hops = [hop.strip() for hop in forwarded_for.split(",") if hop.strip()]
        if len(hops) >= count:
            candidate = hops[-count]
            try:
                return str(ipaddress.ip_address(candidate))
            except ValueError:
                return peer
    return peer


def request_ip(request) -> str | None:
    return client_ip(request.META.get("HTTP_X_FORWARDED_FOR", ""), request.META.get("REMOTE_ADDR"))


def scope_ip(scope) -> str | None:
    headers = dict(scope.get("headers", []))
    forwarded = headers.get(b"x-forwarded-for", b"").decode("latin-1")
    peer = scope.get("client")[0] if scope.get("client") else None
    return client_ip(forwarded, peer)


def login_or_guest(view):
    """Let signed-in users through; start a guest account for others when guests may chat."""

    @wraps(view)
    def wrapper(request, *args, **kwargs):
        if not request.user.is_authenticated:
            if not settings.GUEST_ACCESS:
                return redirect_to_login(request.get_full_path())
            guest = User.objects.create_guest()
            login(request, guest, backend="django.contrib.auth.backends.ModelBackend")
        return view(request, *args, **kwargs)

    return wrapper
