import logging

from django.conf import settings
from django.contrib.auth import login
from django.contrib.auth import views as auth_views
from django.contrib.auth.views import LoginView
from django.shortcuts import redirect, render
from django.urls import reverse_lazy
from django.utils.decorators import method_decorator
from django.utils.http import url_has_allowed_host_and_scheme
from django.utils.translation import gettext as _
from django.views.decorators.debug import sensitive_post_parameters

from . import signup, throttle
from .forms import ChoosePasswordForm, ResetRequestForm, SignInForm, SignUpForm

logger = logging.getLogger(__name__)

# Too Many Requests: the form comes back with the throttle's message.
STATUS_THROTTLED = 429
# Conflict: the sign-up link's address got an account after the link was sent.
STATUS_ACCOUNT_EXISTS = 409
# Gone: the sign-up link expired or was altered.
STATUS_LINK_UNUSABLE = 410
# Service Unavailable: the mail server did not take the email.
STATUS_MAIL_FAILED = 503
MODEL_BACKEND = "django.contrib.auth.backends.ModelBackend"


def safe_next(request, next_url: str) -> str:
    """Return `next_url` when it stays on this site, else an empty string."""
    if next_url and url_has_allowed_host_and_scheme(
        next_url, allowed_hosts={request.get_host()}, require_https=request.is_secure()
    ):
        return next_url
    return ""


def sign_up(request):
    """Mail a sign-up link, or an "account exists" note. The page is the same for both."""
    guest = request.user if getattr(request.user, "is_guest", False) else None
    if request.user.is_authenticated and guest is None:
        return redirect("chat:index")
    if request.method != "POST":
        # The guest's placeholder address is never offered as the email.
        return render(request, "accounts/sign_up.html", {"form": SignUpForm()})

    email = request.POST.get("email", "")
    blocked = throttle.seconds_blocked(request, throttle.SIGN_UP, email)
    if blocked:
        form = SignUpForm(initial={"email": email})
        throttle.show_blocked(form, blocked)
        return render(request, "accounts/sign_up.html", {"form": form}, status=STATUS_THROTTLED)
    # Every attempt counts, so the throttle also bounds the mail one visitor causes.
    throttle.count_attempt(request, throttle.SIGN_UP, email)

    form = SignUpForm(request.POST)
    if not form.is_valid():
        return render(request, "accounts/sign_up.html", {"form": form})
    # An invite link sends people here with ?next= so they land back on it.
    next_url = safe_next(request, request.GET.get("next", ""))
    try:
        signup.send_sign_up_email(
            form.cleaned_data["email"], guest, next_url, request.build_absolute_uri
        )
    except OSError as error:
        # smtplib's errors are OSErrors. Both kinds of sign-up email fail alike,
        # so this page reveals nothing about the address either.
        logger.error("Sending a sign-up email failed: %s", error)
        form.add_error(None, _("The email could not be sent. Try again in a few minutes."))
        return render(request, "accounts/sign_up.html", {"form": form}, status=STATUS_MAIL_FAILED)
    return render(request, "accounts/sign_up_sent.html", {"link_days": signup.SIGN_UP_MAX_AGE.days})


@sensitive_post_parameters("password1", "password2")
def sign_up_confirm(request, token):
    """Let the owner of a sign-up link's address choose a password, then sign them in."""
    try:
        claim = signup.read_token(token)
    except signup.SignUpLinkError as error:
        return render(
            request,
            "accounts/sign_up_link_error.html",
            {"error": str(error)},
            status=STATUS_LINK_UNUSABLE,
        )
    if signup.account_exists(claim.email):
        return _account_exists(request, claim.email)

    user = signup.new_account_for(claim, request.user)
    data = request.POST if request.method == "POST" else None
    form = ChoosePasswordForm(user, data)
    if form.is_valid():
        form.apply()
        try:
            signup.save_account(user)
        except signup.AccountExists:
            return _account_exists(request, claim.email)
        login(request, user, backend=MODEL_BACKEND)
        return redirect(safe_next(request, claim.next_url) or "chat:index")
    return render(request, "accounts/sign_up_confirm.html", {"form": form, "email": claim.email})


def _account_exists(request, email):
    return render(
        request,
        "accounts/sign_up_account_exists.html",
        {"email": email},
        status=STATUS_ACCOUNT_EXISTS,
    )


class ThrottledFormMixin:
    """Return 429 with the form and the wait message while the typed address is blocked.

    The form is not checked while blocked, so a blocked attempt tells nothing
    about the password or the account.
    """

    throttle_action: str
    throttle_field: str
    # When False, the view counts failed attempts itself.
    count_every_attempt = False

    def post(self, request, *args, **kwargs):
        email = request.POST.get(self.throttle_field, "")
        blocked = throttle.seconds_blocked(request, self.throttle_action, email)
        if blocked:
            form = self.get_form_class()(initial={self.throttle_field: email})
            throttle.show_blocked(form, blocked)
            response = self.render_to_response(self.get_context_data(form=form))
            response.status_code = STATUS_THROTTLED
            return response
        if self.count_every_attempt:
            throttle.count_attempt(request, self.throttle_action, email)
        return super().post(request, *args, **kwargs)


@method_decorator(sensitive_post_parameters("password"), name="dispatch")
class SignInView(ThrottledFormMixin, LoginView):
    """Django's sign-in, throttled per account and per address after failed attempts."""

    template_name = "accounts/sign_in.html"
    authentication_form = SignInForm
    throttle_action = throttle.SIGN_IN
    throttle_field = "username"

    def form_invalid(self, form):
        throttle.count_attempt(self.request, throttle.SIGN_IN, self.request.POST.get("username"))
        return super().form_invalid(form)


class PasswordResetView(ThrottledFormMixin, auth_views.PasswordResetView):
    """Django's password reset request, throttled per address typed and per client address.

    Django mails only active accounts with a usable password, and the next page
    is the same either way.
    """

    template_name = "accounts/password_reset.html"
    form_class = ResetRequestForm
    subject_template_name = "accounts/email/password_reset_subject.txt"
    email_template_name = "accounts/email/password_reset.txt"
    extra_email_context = {"link_days": settings.PASSWORD_RESET_TIMEOUT // (24 * 3600)}
    success_url = reverse_lazy("accounts:password_reset_done")
    throttle_action = throttle.PASSWORD_RESET
    throttle_field = "email"
    # Each attempt may send an email, so each one counts.
    count_every_attempt = True
