from django.contrib.auth import login
from django.shortcuts import redirect, render
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.debug import sensitive_post_parameters

from .forms import SignUpForm


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
