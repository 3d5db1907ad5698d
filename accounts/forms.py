from django import forms
from django.contrib.auth.forms import AuthenticationForm, PasswordResetForm, SetPasswordMixin
from django.utils.translation import gettext_lazy as _

from .models import User

EMAIL_MAX_LENGTH = User._meta.get_field("email").max_length


class SignUpForm(forms.Form):
    """The address for the sign-up email. Its errors never reveal whether it has an account."""

    email = forms.EmailField(
        label=_("Email address"),
        max_length=EMAIL_MAX_LENGTH,
        widget=forms.EmailInput(attrs={"autofocus": True, "autocomplete": "email"}),
    )

    def clean_email(self):
        return self.cleaned_data["email"].strip().lower()


class SignInForm(AuthenticationForm):
    error_messages = {
        **AuthenticationForm.error_messages,
        "invalid_login": _("The email address or password is wrong. Check both and try again."),
    }
    username = forms.EmailField(
        label=_("Email address"),
        widget=forms.EmailInput(attrs={"autofocus": True, "autocomplete": "email"}),
    )


class ResetRequestForm(PasswordResetForm):
    """Django's password reset form with the site's address length limit."""

    email = forms.EmailField(
        label=_("Email address"),
        max_length=EMAIL_MAX_LENGTH,
        widget=forms.EmailInput(attrs={"autofocus": True, "autocomplete": "email"}),
    )


class ChoosePasswordForm(SetPasswordMixin, forms.Form):
    """The password of an account made by a sign-up link, checked by Django's validators."""

    password1, password2 = SetPasswordMixin.create_password_fields()

    def __init__(self, user, *args, **kwargs):
        # The unsaved account: the validators compare the password with its address.
        self.user = user
        super().__init__(*args, **kwargs)

    def clean(self):
        self.validate_passwords()
        # Django puts a weak password's errors under the confirmation field;
        # they belong under the password the person chose.
        self.validate_password_for_user(self.user, password_field_name="password1")
        return super().clean()

    def apply(self) -> User:
        """Set the password on the unsaved account; the caller stores it."""
        return self.set_password_and_save(self.user, commit=False)
