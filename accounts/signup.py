"""Sign-up by emailed link: the link proves the address before an account exists.

The sign-up form only takes an address and always shows the same page, so it
reveals nothing about which addresses have accounts. The email it sends is
what differs: a signed sign-up link for a new address, or a note with sign-in
and password reset links for an address that already has an account.
"""

import logging
from dataclasses import dataclass
from datetime import timedelta

from django.conf import settings
from django.core import signing
from django.core.mail import send_mail
from django.db import IntegrityError, transaction
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils.translation import gettext as _

from .models import User

logger = logging.getLogger(__name__)

SIGN_UP_SALT = "accounts.sign-up"
SIGN_UP_MAX_AGE = timedelta(days=2)


class SignUpLinkError(Exception):
    """A sign-up link that cannot be used. The message states why and what to do next."""


class AccountExists(Exception):
    """The link's address got an account after the link was sent."""


@dataclass(frozen=True, slots=True)
class SignUpClaim:
    """Contents of a sign-up link: the address, the requesting guest, the page to open after."""

    email: str
    guest_id: int | None
    next_url: str


def _signer() -> signing.TimestampSigner:
    return signing.TimestampSigner(salt=SIGN_UP_SALT)


def make_token(claim: SignUpClaim) -> str:
    return _signer().sign_object(
        {"email": claim.email, "guest": claim.guest_id, "next": claim.next_url}
    )


def read_token(token: str) -> SignUpClaim:
    """Return the claim of a sign-up link, or raise SignUpLinkError when expired or altered."""
    try:
        data = _signer().unsign_object(token, max_age=SIGN_UP_MAX_AGE)
    except signing.SignatureExpired:
        raise SignUpLinkError(_("This sign-up link has expired. Ask for a new one.")) from None
    except signing.BadSignature:
        raise SignUpLinkError(
            _(
                "This sign-up link is not valid. "
                "Check that you copied all of it, or ask for a new one."
            )
        ) from None
    return SignUpClaim(
        email=data["email"], guest_id=data.get("guest"), next_url=data.get("next", "")
    )


def account_exists(email: str) -> bool:
    return User.objects.filter(email__iexact=email).exists()


def send_sign_up_email(email: str, guest: User | None, next_url: str, build_absolute_uri) -> None:
    """Mail a sign-up link to a new address, or an "account exists" note to a known one.

    Exactly one email goes out either way, rendered in the active language.
    """
    email = email.strip().lower()
    if account_exists(email):
        context = {
            "email": email,
            "sign_in_url": build_absolute_uri(reverse("accounts:login")),
            "reset_url": build_absolute_uri(reverse("accounts:password_reset")),
        }
        subject = _("You already have a chatsite account")
        body = render_to_string("accounts/email/account_exists.txt", context)
    else:
        claim = SignUpClaim(email=email, guest_id=guest.pk if guest else None, next_url=next_url)
        link = build_absolute_uri(reverse("accounts:sign_up_confirm", args=[make_token(claim)]))
        context = {"email": email, "link": link, "link_days": SIGN_UP_MAX_AGE.days}
        subject = _("Finish signing up for chatsite")
        body = render_to_string("accounts/email/sign_up_link.txt", context)
    send_mail(subject, body, settings.DEFAULT_FROM_EMAIL, [email])
    # Neither the address nor which email went out is logged: together they
    # would list which addresses have accounts.
    logger.info("Sent a sign-up email")


def new_account_for(claim: SignUpClaim, visitor) -> User:
    """Return the unsaved user a claim makes: the visitor's own guest account, or a new one.

    A guest account is reused only when the signed-in visitor is the guest who
    asked for the link, so their conversations and the day's usage stay theirs.
    """
    if (
        claim.guest_id is not None
        and getattr(visitor, "is_guest", False)
        and visitor.pk == claim.guest_id
    ):
        user = User.objects.get(pk=visitor.pk)
    else:
        user = User()
    user.email = claim.email
    user.is_guest = False
    return user


def save_account(user: User) -> None:
    """Store the account made by a sign-up link, or raise AccountExists and store nothing."""
    try:
        with transaction.atomic():
            if account_exists(user.email):
                raise AccountExists
            user.save()
    except IntegrityError:
        # Two links for one address completed at once; the unique index kept one.
        raise AccountExists from None
    logger.info("User %s signed up by emailed link", user.pk)
