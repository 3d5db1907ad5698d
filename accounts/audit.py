"""Recording every change of a cap made in the admin: who, when, old and new value."""

from .models import LIMIT_FIELDS, LimitChange


def _text(value):
    return "" if value is None else str(value)


def record_formset_changes(formset, changed_by, target_of):
    """Write one LimitChange per changed limit field of a saved inline formset.

    `target_of(instance, cleaned_data)` names what the row limits, such as
    "user 42/thinking".
    Call before `formset.save()`, while the forms still hold the old values.
    """
    changes = []
    for form in formset.forms:
        if not hasattr(form, "cleaned_data") or not form.cleaned_data:
            continue
        instance = form.instance
        deleted = formset.can_delete and form.cleaned_data.get("DELETE")
        if not deleted and not form.has_changed():
            continue
        target = target_of(instance, form.cleaned_data)
        for field in LIMIT_FIELDS:
            if field not in form.fields:
                continue
            old = form.initial.get(field) if instance.pk else None
            new = None if deleted else form.cleaned_data.get(field)
            if _text(old) != _text(new):
                changes.append(
                    LimitChange(
                        changed_by=changed_by,
                        target=target,
                        field=field,
                        old_value=_text(old),
                        new_value=_text(new),
                    )
                )
    LimitChange.objects.bulk_create(changes)
    return changes
