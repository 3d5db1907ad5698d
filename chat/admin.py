from django.contrib import admin
from django.db import models
from django.utils.translation import gettext_lazy as _
from django.utils.translation import ngettext

from .models import (
    ChatModel,
    Conversation,
    Endpoint,
    Message,
    ModelPrice,
    Preferences,
    SiteSettings,
    UsageRecord,
)


class MessageInline(admin.TabularInline):
    model = Message
    extra = 0
    fields = ("role", "status", "content", "error_code", "created_at")
    readonly_fields = fields
    can_delete = False
    show_change_link = True


@admin.register(Conversation)
class ConversationAdmin(admin.ModelAdmin):
    list_display = ("title", "owner", "updated_at", "deleted_at")
    list_filter = (("deleted_at", admin.EmptyFieldListFilter),)
    search_fields = ("title", "owner__email")
    raw_id_fields = ("owner",)
    inlines = [MessageInline]
    actions = ["restore"]

    @admin.action(description=_("Restore the selected deleted conversations"))
    def restore(self, request, queryset):
        restored = queryset.filter(deleted_at__isnull=False).update(deleted_at=None)
        self.message_user(
            request,
            ngettext(
                "%(count)d conversation restored.", "%(count)d conversations restored.", restored
            )
            % {"count": restored},
        )


@admin.register(Message)
class MessageAdmin(admin.ModelAdmin):
    list_display = ("id", "role", "status", "model", "error_code", "created_at")
    list_filter = ("role", "status", "error_code")
    raw_id_fields = ("conversation",)
    readonly_fields = ("created_at",)


class ModelPriceInline(admin.TabularInline):
    model = ModelPrice
    extra = 0
    fields = (
        "effective_from",
        "input_cache_hit",
        "input_cache_miss",
        "output",
        "peak_windows",
        "peak_weekdays_only",
        "off_peak_input_cache_hit",
        "off_peak_input_cache_miss",
        "off_peak_output",
    )


@admin.register(Endpoint)
class EndpointAdmin(admin.ModelAdmin):
    list_display = ("name", "kind", "base_url", "api_key_env", "is_active")
    list_filter = ("kind", "is_active")
    prepopulated_fields = {"slug": ("name",)}
    # A base URL typed without a scheme means https (Django 6's default too).
    formfield_overrides = {models.URLField: {"assume_scheme": "https"}}

    def get_readonly_fields(self, request, obj=None):
        # The environment's endpoint is rewritten from DEEPSEEK_* at every migrate.
        if obj is not None and obj.managed_by_environment:
            return ("slug", "kind", "base_url", "api_key_env")
        return ()


@admin.register(ChatModel)
class ChatModelAdmin(admin.ModelAdmin):
    list_display = ("display_name", "model_id", "endpoint", "model_class", "is_active")
    list_filter = ("endpoint", "model_class", "is_active")
    prepopulated_fields = {"slug": ("display_name",)}
    filter_horizontal = ("plans",)
    inlines = [ModelPriceInline]


@admin.register(UsageRecord)
class UsageRecordAdmin(admin.ModelAdmin):
    list_display = (
        "created_at",
        "user",
        "model_id",
        "outcome",
        "counted",
        "completion_tokens",
        "cost_usd",
        "error_code",
    )
    list_filter = ("outcome", "counted", "model_id", "error_code")
    raw_id_fields = ("message", "user", "chat_model")
    date_hierarchy = "created_at"

    def has_change_permission(self, request, obj=None):
        # The ledger records what happened, so it is read-only.
        return False


@admin.register(SiteSettings)
class SiteSettingsAdmin(admin.ModelAdmin):
    list_display = ("__str__", "reasoning_panel")

    def has_add_permission(self, request):
        # One row (pk=1), made on first use by SiteSettings.current().
        return not SiteSettings.objects.exists()

    def has_delete_permission(self, request, obj=None):
        return False


@admin.register(Preferences)
class PreferencesAdmin(admin.ModelAdmin):
    list_display = ("user", "language", "theme", "reasoning_panel", "send_key")
    search_fields = ("user__email",)
    raw_id_fields = ("user",)
