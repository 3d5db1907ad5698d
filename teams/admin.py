from django.contrib import admin

from .models import Invite, Membership, Team


class MembershipInline(admin.TabularInline):
    model = Membership
    extra = 0
    autocomplete_fields = ["user"]


@admin.register(Team)
class TeamAdmin(admin.ModelAdmin):
    list_display = ["name", "budget_unit", "monthly_budget", "member_monthly_cap", "created_at"]
    search_fields = ["name"]
    inlines = [MembershipInline]


@admin.register(Invite)
class InviteAdmin(admin.ModelAdmin):
    list_display = ["team", "role", "uses", "max_uses", "expires_at", "revoked_at"]
    list_filter = ["role"]
    readonly_fields = ["token", "uses", "created_by", "created_at"]
