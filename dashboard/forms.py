"""Editing a user's plan and limit overrides from the dashboard, recorded like the admin does."""

from django import forms
from django.forms import inlineformset_factory
from django.utils.translation import gettext_lazy as _

from accounts.audit import record_formset_changes
from accounts.models import LIMIT_FIELDS, LimitChange, Plan, User, UserLimitOverride


class PlanForm(forms.ModelForm):
    class Meta:
        model = User
        fields = ["plan"]

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["plan"].queryset = Plan.objects.order_by("name")
        self.fields["plan"].empty_label = _("(none: the free plan)")


OverrideFormSet = inlineformset_factory(
    User,
    UserLimitOverride,
    fields=["model_class", *LIMIT_FIELDS],
    extra=1,
    can_delete=True,
)


def override_target(user):
    """Return the LimitChange target naming one of `user`'s overrides, as the admin writes it."""
    return lambda override, data: (
        f"user {user.pk}/{data.get('model_class') or override.model_class}"
    )


def save_limits(user, plan_form, formset, changed_by) -> list[LimitChange]:
    """Save a valid plan form and override formset, writing one LimitChange per changed value.

    The plan change is recorded with the target "user <id>" and the field
    "plan", beside the admin's override records "user <id>/<class>".
    """
    changes = []
    old_plan = User.objects.filter(pk=user.pk).values_list("plan__slug", flat=True).first()
    new_plan = plan_form.cleaned_data["plan"]
    new_slug = new_plan.slug if new_plan else None
    if (old_plan or "") != (new_slug or ""):
        changes.append(
            LimitChange.objects.create(
                changed_by=changed_by,
                target=f"user {user.pk}",
                field="plan",
                old_value=old_plan or "",
                new_value=new_slug or "",
            )
        )
    plan_form.save()
    changes += record_formset_changes(formset, changed_by, override_target(user))
    formset.save()
    return changes
