from django.contrib.auth import login
from django.contrib.auth.views import LoginView
from django.shortcuts import redirect, render
from django.utils.decorators import method_decorator
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.debug import sensitive_post_parameters

from . import throttle
from .forms import SignInForm, SignUpForm

# Too Many Requests: the form comes back with the throttle's message.
STATUS_THROTTLED = 429


@sensitive_post_parameters("password1", "password2")
def sign_up(request):
    guest = request.user if getattr(request.user, "is_guest", False) else None
    if request.user.is_authenticated and guest is None:
        return redirect("chat:index")

    # A guest's sign-up turns the guest account into a normal one, so the
    # conversations and the day's usage stay with the person.
    # The guest's placeholder address must not be offered as the new email.
    # An empty POST is still a submission and must show "This field is required".
    data = request.POST if request.method == "POST" else None
    form = SignUpForm(data, instance=guest, initial={"email": ""})
    if request.method == "POST":
        email = request.POST.get("email", "")
        blocked = throttle.seconds_blocked(request, throttle.SIGN_UP, email)
        if blocked:
            form = SignUpForm(instance=guest, initial={"email": email})
            throttle.show_blocked(form, blocked)
            return render(request, "accounts/sign_up.html", {"form": form}, status=STATUS_THROTTLED)
        throttle.count_attempt(request, throttle.SIGN_UP, email)
    if request.method == "POST" and form.is_valid():
        user = form.save(commit=False)
        user.is_guest = False
        user.save()
        login(request, user, backend="django.contrib.auth.backends.ModelBackend")
        # An invite link sends people here with ?next= so they land back on it.
        next_url = request.GET.get("next", "")
        if url_has_allowed_host_and_scheme(
            next_url, allowed_hosts={request.get_host()}, require_https=request.is_secure()
        ):
            return redirect(next_url)
        return redirect("chat:index")

    return render(request, "accounts/sign_up.html", {"form": form})


@method_decorator(sensitive_post_parameters("password"), name="dispatch")
class SignInView(LoginView):
    """Django's sign-in, throttled per account and per address after failed attempts."""

    template_name = "accounts/sign_in.html"
    authentication_form = SignInForm

    def post(self, request, *args, **kwargs):
        email = request.POST.get("username", "")
        blocked = throttle.seconds_blocked(request, throttle.SIGN_IN, email)
        if blocked:
            # The password is not checked, so a blocked attempt tells nothing about it.
            form = self.get_form_class()(request, initial={"username": email})
            throttle.show_blocked(form, blocked)
            response = self.render_to_response(self.get_context_data(form=form))
            response.status_code = STATUS_THROTTLED
            return response
        return super().post(request, *args, **kwargs)

    def form_invalid(self, form):
        throttle.count_attempt(self.request, throttle.SIGN_IN, self.request.POST.get("username"))
        return super().form_invalid(form)
