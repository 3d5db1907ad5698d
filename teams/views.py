"""Team pages: the list of one's teams, a team's page with its management forms, joining."""

from functools import wraps

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.db.models import Sum
from django.http import Http404
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import NoReverseMatch, reverse
from django.utils import timezone
from django.utils.translation import gettext as _
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from chat.models import Conversation, UsageRecord
from chat.sharing import read_only_messages

from . import budgets, services
from .access import membership_for
from .forms import (
    DeleteTeamForm,
    InviteForm,
    MemberForm,
    ShareForm,
    TeamCreateForm,
    TeamSettingsForm,
)
from .models import Invite, Membership, Team
from .services import TeamError


def member_required(view):
    """Pass the request user's membership of the URL's team; anyone outside the team gets 404."""

    @login_required
    @wraps(view)
    def wrapper(request, team_id, *args, **kwargs):
        membership = membership_for(request.user, team_id)
        if membership is None:
            raise Http404(_("Team not found."))
        return view(request, membership, *args, **kwargs)

    return wrapper


def manager_required(view):
    @member_required
    @wraps(view)
    def wrapper(request, membership, *args, **kwargs):
        if not membership.can_manage:
            messages.error(request, _("Only the team's owner and admins can do this."))
            return redirect("teams:detail", membership.team_id)
        return view(request, membership, *args, **kwargs)

    return wrapper


def _team_rows(memberships):
    rows = []
    for membership in memberships:
        status = budgets.team_status(membership.team)
        rows.append((membership, status, _remaining_text(status)))
    return rows


@login_required
@require_GET
def team_list(request):
    memberships = Membership.objects.filter(user=request.user).select_related("team")
    context = {
        "rows": _team_rows(memberships),
        "form": TeamCreateForm(),
        "joinable": services.joinable_by_domain(request.user),
    }
    return render(request, "teams/team_list.html", context)


@login_required
@require_POST
def team_create(request):
    form = TeamCreateForm(request.POST)
    if not form.is_valid():
        memberships = Membership.objects.filter(user=request.user).select_related("team")
        context = {
            "rows": _team_rows(memberships),
            "form": form,
            "joinable": services.joinable_by_domain(request.user),
        }
        return render(request, "teams/team_list.html", context, status=400)
    try:
        team = services.create_team(request.user, form.cleaned_data["name"])
    except TeamError as error:
        messages.error(request, str(error))
        return redirect("teams:list")
    return redirect("teams:detail", team.pk)


def _usage_by_member(team, since):
    rows = (
        UsageRecord.objects.filter(team=team, created_at__gte=since)
        .values("user")
        .annotate(
            cost=Sum("cost_usd"),
            tokens=Sum(UsageRecord.total_tokens()),
        )
    )
    return {row["user"]: row for row in rows}


def _dashboard_url(team):
    try:
        return reverse("dashboard:overview") + f"?team={team.pk}"
    except NoReverseMatch:
        return None


def _remaining_text(status):
    if status.limit is None:
        return None
    return budgets.format_amount(status.unit, status.remaining)


def _member_rows(team, now):
    """Return each member with their use this month and cap, as the team's table shows them."""
    usage = _usage_by_member(team, budgets.month_start(now))
    rows = []
    for member in team.memberships.select_related("user").order_by("joined_at"):
        used = usage.get(member.user_id, {})
        if team.budget_unit == Team.BudgetUnit.TOKENS:
            amount = used.get("tokens")
        else:
            amount = used.get("cost")
        cap = member.effective_cap()
        rows.append(
            {
                "membership": member,
                "used": budgets.format_amount(team.budget_unit, amount or 0),
                "cap": budgets.format_amount(team.budget_unit, cap) if cap is not None else None,
                "form": MemberForm(
                    initial={"role": member.role, "monthly_cap": member.monthly_cap},
                    prefix=f"m{member.pk}",
                ),
            }
        )
    return rows


def _detail_context(membership, **forms):
    team = membership.team
    now = timezone.now()
    team_status = budgets.team_status(team, now)
    my_status = budgets.member_status(membership, now)
    shared = services.shared_conversations(membership.user, team).order_by("-updated_at")

    context = {
        "team": team,
        "membership": membership,
        "members": _member_rows(team, now),
        "team_status": team_status,
        "team_spent": budgets.format_amount(team.budget_unit, team_status.spent),
        "team_remaining": _remaining_text(team_status),
        "my_spent": budgets.format_amount(team.budget_unit, my_status.spent),
        "my_remaining": _remaining_text(my_status),
        "shared": shared[:100],
        "dashboard_url": _dashboard_url(team) if membership.can_manage else None,
    }
    if membership.can_manage:
        context["invites"] = [(invite, invite.state(now)) for invite in team.invites.all()[:50]]
        context["invite_form"] = forms.get("invite_form") or InviteForm()
        context["settings_form"] = forms.get("settings_form") or TeamSettingsForm(instance=team)
    if membership.role == Membership.Role.OWNER:
        context["delete_form"] = forms.get("delete_form") or DeleteTeamForm()
    return context


@member_required
@require_GET
def team_detail(request, membership):
    return render(request, "teams/team_detail.html", _detail_context(membership))


@manager_required
@require_POST
def team_settings(request, membership):
    form = TeamSettingsForm(request.POST, instance=membership.team)
    if not form.is_valid():
        context = _detail_context(membership, settings_form=form)
        return render(request, "teams/team_detail.html", context, status=400)
    form.save()
    messages.success(request, _("Team settings saved."))
    return redirect("teams:detail", membership.team_id)


@manager_required
@require_POST
def invite_create(request, membership):
    form = InviteForm(request.POST)
    if not form.is_valid():
        context = _detail_context(membership, invite_form=form)
        return render(request, "teams/team_detail.html", context, status=400)
    try:
        services.create_invite(
            membership,
            role=form.cleaned_data["role"],
            max_uses=form.cleaned_data["max_uses"],
            expires_in=form.expires_in(),
        )
    except TeamError as error:
        messages.error(request, str(error))
        return redirect("teams:detail", membership.team_id)
    messages.success(request, _("Invite link created. Copy it from the list below."))
    # The list sits below the fold on most screens, so the page opens at it.
    return redirect(reverse("teams:detail", args=[membership.team_id]) + "#invites-heading")


@manager_required
@require_POST
def invite_revoke(request, membership, invite_id):
    invite = get_object_or_404(Invite, pk=invite_id, team=membership.team)
    services.revoke_invite(membership, invite)
    messages.success(request, _("Invite link revoked."))
    return redirect("teams:detail", membership.team_id)


@manager_required
@require_POST
def member_update(request, membership, member_id):
    target = get_object_or_404(Membership, pk=member_id, team=membership.team)
    form = MemberForm(request.POST, prefix=f"m{target.pk}")
    if not form.is_valid():
        errors = "; ".join(str(e) for errs in form.errors.values() for e in errs)
        messages.error(request, _("Not saved: %(errors)s") % {"errors": errors})
        return redirect("teams:detail", membership.team_id)
    try:
        if form.cleaned_data["role"] != target.role:
            services.change_role(membership, target, form.cleaned_data["role"])
        if form.cleaned_data["monthly_cap"] != target.monthly_cap:
            services.set_member_cap(membership, target, form.cleaned_data["monthly_cap"])
    except TeamError as error:
        messages.error(request, str(error))
    else:
        messages.success(request, _("Saved %(email)s.") % {"email": target.user.email})
    return redirect("teams:detail", membership.team_id)


@manager_required
@require_POST
def member_remove(request, membership, member_id):
    target = get_object_or_404(Membership, pk=member_id, team=membership.team)
    try:
        services.remove_member(membership, target)
    except TeamError as error:
        messages.error(request, str(error))
    else:
        messages.success(
            request, _("Removed %(email)s from the team.") % {"email": target.user.email}
        )
    return redirect("teams:detail", membership.team_id)


@member_required
@require_POST
def team_leave(request, membership):
    try:
        services.remove_member(membership, membership)
    except TeamError as error:
        messages.error(request, str(error))
        return redirect("teams:detail", membership.team_id)
    messages.success(request, _("You left the team “%(team)s”.") % {"team": membership.team.name})
    return redirect("teams:list")


@member_required
@require_POST
def team_delete(request, membership):
    form = DeleteTeamForm(request.POST)
    if form.is_valid():
        try:
            services.delete_team(membership, form.cleaned_data["confirmation"])
        except TeamError as error:
            form.add_error("confirmation", str(error))
        else:
            messages.success(request, _("The team was deleted."))
            return redirect("teams:list")
    context = _detail_context(membership, delete_form=form)
    return render(request, "teams/team_detail.html", context, status=400)


@member_required
@require_GET
def shared_conversation(request, membership, conversation_id):
    conversation = (
        services.shared_conversations(request.user, membership.team)
        .filter(pk=conversation_id)
        .first()
    )
    if conversation is None:
        raise Http404(_("Conversation not found."))
    # The version on screen for a fresh chat page: the newest at each fork.
    messages_data = read_only_messages(conversation, show_reasoning=True)
    context = {
        "team": membership.team,
        "conversation": conversation,
        "messages_data": messages_data,
    }
    return render(request, "teams/shared_conversation.html", context)


@login_required
@require_POST
def share(request, conversation_id):
    conversation = get_object_or_404(
        Conversation, pk=conversation_id, owner=request.user, deleted_at__isnull=True
    )
    form = ShareForm(request.POST)
    team = None
    if form.is_valid() and form.cleaned_data["team"]:
        team = Team.objects.filter(pk=form.cleaned_data["team"]).first()
        if team is None:
            raise Http404(_("Team not found."))
    try:
        services.share_with_team(request.user, conversation, team)
    except TeamError as error:
        messages.error(request, str(error))
    else:
        if team is None:
            messages.success(request, _("This conversation is no longer shared with a team."))
        else:
            messages.success(
                request,
                _("Shared with %(team)s: its members can read this conversation.")
                % {"team": team.name},
            )
    return redirect(conversation.get_absolute_url())


@require_http_methods(["GET", "POST"])
def invite_accept(request, token):
    invite = Invite.objects.select_related("team").filter(token=token).first()
    state = invite.state() if invite else "invalid"
    signed_in = request.user.is_authenticated and not request.user.is_guest
    already = (
        signed_in
        and invite
        and Membership.objects.filter(team=invite.team, user=request.user).exists()
    )
    error = None
    if request.method == "POST":
        if not signed_in:
            return redirect(f"{reverse('accounts:login')}?next={request.path}")
        try:
            membership, _created = services.accept_invite(request.user, token)
        except TeamError as refused:
            error = str(refused)
        else:
            return redirect("teams:detail", membership.team_id)
    elif invite is None:
        error = _("This invite link is not valid. Check that you copied all of it.")
    elif state != "active" and not already:
        error = services.INVITE_STATE_ERRORS[state]()
    context = {
        "invite": invite,
        "error": error,
        "signed_in": signed_in,
        "already": already,
        "next": request.path,
    }
    return render(request, "teams/invite.html", context, status=410 if error else 200)


@login_required
@require_POST
def domain_join_request(request, team_id):
    team = get_object_or_404(Team, pk=team_id)
    try:
        services.send_domain_join_link(request.user, team, request.build_absolute_uri)
    except TeamError:
        raise Http404(_("Team not found.")) from None
    messages.success(
        request,
        _("We sent a link to %(email)s. Open it to join “%(team)s”.")
        % {"email": request.user.email, "team": team.name},
    )
    return redirect("teams:list")


@login_required
@require_http_methods(["GET", "POST"])
def domain_join(request, token):
    try:
        team = services.read_domain_join_token(request.user, token)
    except TeamError as error:
        return render(request, "teams/domain_join.html", {"error": str(error)}, status=410)
    if request.method == "POST":
        membership = services.join_by_domain(request.user, token)
        return redirect("teams:detail", membership.team_id)
    return render(request, "teams/domain_join.html", {"team": team})
