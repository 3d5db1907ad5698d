import re
from datetime import timedelta

from django import forms
from django.utils.translation import gettext_lazy as _

from .models import Membership, Team

DOMAIN_RE = re.compile(r"^(?=.{1,253}$)([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z]{2,63}$")


class TeamCreateForm(forms.ModelForm):
    class Meta:
        model = Team
        fields = ["name"]


class TeamSettingsForm(forms.ModelForm):
    class Meta:
        model = Team
        fields = ["name", "budget_unit", "monthly_budget", "member_monthly_cap", "allowed_domains"]
        widgets = {"allowed_domains": forms.Textarea(attrs={"rows": 3})}
        help_texts = {
            "monthly_budget": _(
                "In the unit above, for the whole team each calendar month. Empty: no budget."
            ),
            "member_monthly_cap": _(
                "The most one member may use each month, unless set per member. Empty: no cap."
            ),
            "allowed_domains": _(
                "One domain per line, such as example.com. People with an address there can "
                "join after confirming it by email. Empty: invites only."
            ),
        }

    def _clean_amount(self, name):
        value = self.cleaned_data.get(name)
        if value is not None and value < 0:
            raise forms.ValidationError(_("Enter zero or a positive amount."))
        return value

    def clean_monthly_budget(self):
        return self._clean_amount("monthly_budget")

    def clean_member_monthly_cap(self):
        return self._clean_amount("member_monthly_cap")

    def clean_allowed_domains(self):
        domains = []
        for line in self.cleaned_data["allowed_domains"].splitlines():
            domain = line.strip().lower().lstrip("@")
            if not domain:
                continue
            if not DOMAIN_RE.match(domain):
                raise forms.ValidationError(
                    _("“%(domain)s” is not a domain name. Write one per line, such as example.com.")
                    % {"domain": line.strip()}
                )
            domains.append(domain)
        return "\n".join(dict.fromkeys(domains))

    def clean(self):
        cleaned = super().clean()
        budget, cap = cleaned.get("monthly_budget"), cleaned.get("member_monthly_cap")
        if budget is not None and cap is not None and cap > budget:
            self.add_error(
                "member_monthly_cap",
                _("A member's cap cannot be larger than the team's monthly budget."),
            )
        return cleaned


class InviteForm(forms.Form):
    role = forms.ChoiceField(
        label=_("Role"),
        choices=[(Membership.Role.MEMBER, _("member")), (Membership.Role.ADMIN, _("admin"))],
    )
    max_uses = forms.IntegerField(
        label=_("Uses allowed"),
        min_value=1,
        max_value=10_000,
        required=False,
        initial=1,
        help_text=_("1 for a single person; empty for any number of people."),
    )
    expires_in_days = forms.IntegerField(
        label=_("Expires after (days)"), min_value=1, max_value=30, initial=7
    )

    def expires_in(self) -> timedelta:
        return timedelta(days=self.cleaned_data["expires_in_days"])


class MemberForm(forms.Form):
    role = forms.ChoiceField(label=_("Role"), choices=Membership.Role.choices)
    monthly_cap = forms.DecimalField(
        label=_("Monthly cap"),
        min_value=0,
        max_digits=14,
        decimal_places=4,
        required=False,
        help_text=_("Empty: the team's cap per member."),
    )


class DeleteTeamForm(forms.Form):
    confirmation = forms.CharField(
        label=_("Type the team's name to confirm"), max_length=100, strip=True
    )


class ShareForm(forms.Form):
    team = forms.IntegerField(required=False)
