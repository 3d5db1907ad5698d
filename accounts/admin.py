from django.contrib import admin
from django.contrib.auth.admin import UserAdmin as BaseUserAdmin
from django.utils.translation import gettext_lazy as _

from .audit import record_formset_changes
from .models import (
    LimitChange,
    Plan,
    PlanLimit,
    QuotaCounter,
    SpendCap,
    User,
    UserLimitOverride,
)


class UserLimitOverrideInline(admin.TabularInline):
    model = UserLimitOverride
    extra = 0


@admin.register(User)
class UserAdmin(BaseUserAdmin):
    inlines = [UserLimitOverrideInline]

    def save_formset(self, request, form, formset, change):
        if formset.model is UserLimitOverride:
            record_formset_changes(
                formset,
                request.user,
                lambda override, data: (
                    f"user {form.instance.pk}/{data.get('model_class') or override.model_class}"
                ),
            )
        super().save_formset(request, form, formset, change)

    ordering = ("email",)
    list_display = ("email", "display_name", "is_staff", "is_active", "date_joined")
    search_fields = ("email", "display_name")
    fieldsets = (
        (None, {"fields": ("email", "password")}),
        (_("Profile"), {"fields": ("display_name", "plan")}),
        (
            _("Permissions"),
            {"fields": ("is_active", "is_staff", "is_superuser", "groups", "user_permissions")},
        ),
        (_("Dates"), {"fields": ("last_login", "date_joined")}),
    )
    add_fieldsets = ((None, {"classes": ("wide",), "fields": ("email", "password1", "password2")}),)


class PlanLimitInline(admin.TabularInline):
    model = PlanLimit
    extra = 0


@admin.register(Plan)
class PlanAdmin(admin.ModelAdmin):
    list_display = ("name", "slug")
    prepopulated_fields = {"slug": ("name",)}
    inlines = [PlanLimitInline]

    def save_formset(self, request, form, formset, change):
        if formset.model is PlanLimit:
            record_formset_changes(
                formset,
                request.user,
                lambda limit, data: (
                    f"plan {form.instance.slug}/{data.get('model_class') or limit.model_class}"
                ),
            )
        super().save_formset(request, form, formset, change)


@admin.register(LimitChange)
class LimitChangeAdmin(admin.ModelAdmin):
    list_display = ("changed_at", "changed_by", "target", "field", "old_value", "new_value")
    list_filter = ("field",)
    search_fields = ("target",)

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


@admin.register(SpendCap)
class SpendCapAdmin(admin.ModelAdmin):
    list_display = ("name", "amount_usd", "is_active")
    filter_horizontal = ("plans",)


@admin.register(QuotaCounter)
class QuotaCounterAdmin(admin.ModelAdmin):
    list_display = ("subject", "model_class", "day", "used")
    list_filter = ("model_class", "day")
    search_fields = ("subject",)
    readonly_fields = ("subject", "model_class", "day")
