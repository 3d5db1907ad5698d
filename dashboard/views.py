"""The usage dashboard's pages: overview, users, one user, models, errors, CSV exports."""

import math
from urllib.parse import urlencode

from django.contrib import messages as flash
from django.db import transaction
from django.db.models import Q
from django.http import Http404
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils.translation import gettext as _
from django.views.decorators.http import require_GET, require_http_methods

from accounts.models import LimitChange, User
from chat.models import Conversation

from . import charts, exports, queries
from .filters import filters_from_request
from .forms import OverrideFormSet, PlanForm, save_limits
from .models import ConversationAccess
from .scope import dashboard_view, staff_only

USERS_PER_PAGE = 50
RECENT_FAILURES = 20
AUDIT_ROWS = 50


def _context(request, section, form, filters, **extra):
    query = urlencode(filters.query)
    return {
        "section": section,
        "form": form,
        "filters": filters,
        "scope": request.scope,
        "query": query,
        "query_prefix": f"?{query}" if query else "",
        **extra,
    }


def _usage_charts(filters, series, *, with_blocks=True, with_errors=True):
    buckets = [row["bucket"] for row in series]
    hourly = filters.period.hourly
    result = [
        charts.build(
            "messages",
            _("Replies per hour") if hourly else _("Replies per day"),
            buckets,
            [charts.Series(_("Replies"), [row["messages"] for row in series])],
        ),
        charts.build(
            "tokens",
            _("Tokens per hour") if hourly else _("Tokens per day"),
            buckets,
            [
                charts.Series(_("Prompt, cache hit"), [row["cache_hit"] for row in series]),
                charts.Series(_("Prompt, cache miss"), [row["cache_miss"] for row in series]),
                charts.Series(_("Reasoning"), [row["reasoning"] for row in series]),
                charts.Series(_("Answer"), [row["answer"] for row in series]),
            ],
        ),
        charts.build(
            "cost",
            _("Cost per hour (US$)") if hourly else _("Cost per day (US$)"),
            buckets,
            [charts.Series(_("Cost (US$)"), [row["cost"] for row in series], decimals=4)],
            decimals=2,
        ),
    ]
    if with_blocks:
        result.append(
            charts.build(
                "blocks",
                _("Quota blocks per hour") if hourly else _("Quota blocks per day"),
                buckets,
                [charts.Series(_("Blocked sends"), [row["blocks"] for row in series])],
            )
        )
    if with_errors:
        result.append(
            charts.build(
                "errors",
                _("Errors per hour") if hourly else _("Errors per day"),
                buckets,
                [charts.Series(_("Failed replies"), [row["errors"] for row in series])],
            )
        )
    return result


@require_GET
@dashboard_view
def overview(request):
    form, filters = filters_from_request(request, request.scope)
    series = queries.usage_series(filters)
    context = _context(
        request,
        "overview",
        form,
        filters,
        totals=queries.totals(filters),
        blocks_by_code=queries.blocks_by_code(filters),
        spend=queries.spend_today(request.scope),
        charts=_usage_charts(filters, series),
    )
    return render(request, "dashboard/overview.html", context)


@require_GET
@dashboard_view
def users(request):
    form, filters = filters_from_request(request, request.scope)
    search = request.GET.get("q", "").strip()[:200]
    sort = request.GET.get("sort", "-cost")
    if sort.lstrip("-") not in queries.USER_SORTS:
        sort = "-cost"
    descending = sort.startswith("-")
    key = sort.lstrip("-")
    try:
        page = max(1, int(request.GET.get("page", "1")))
    except ValueError:
        page = 1
    result = queries.user_rows(
        filters, search=search, sort=key, descending=descending, page=page, per_page=USERS_PER_PAGE
    )
    pages = max(1, math.ceil(result.total / USERS_PER_PAGE))
    base = {**filters.query, **({"q": search} if search else {})}

    def link(**changes):
        return "?" + urlencode({**base, "sort": sort, "page": page, **changes})

    columns = []
    for name, label in (
        ("email", _("Email address")),
        ("messages", _("Replies")),
        ("tokens", _("Tokens")),
        ("cost", _("Cost (US$)")),
        ("blocks", _("Quota blocks")),
        ("last_active", _("Last active")),
    ):
        current = key == name
        # A click on the sorted column reverses it; a new column starts with the largest.
        if current:
            next_sort = name if descending else f"-{name}"
        else:
            next_sort = name if name == "email" else f"-{name}"
        columns.append(
            {
                "name": name,
                "label": label,
                "link": link(sort=next_sort, page=1),
                "aria_sort": ("descending" if descending else "ascending") if current else None,
            }
        )
    context = _context(
        request,
        "users",
        form,
        filters,
        rows=result.rows,
        total=result.total,
        page=page,
        pages=pages,
        search=search,
        columns=columns,
        previous_link=link(page=page - 1) if page > 1 else None,
        next_link=link(page=page + 1) if page < pages else None,
        csv_link=reverse("dashboard:users_csv") + "?" + urlencode({**base, "sort": sort}),
    )
    return render(request, "dashboard/users.html", context)


@require_http_methods(["GET", "POST"])
@dashboard_view
def user_detail(request, user_id):
    scope = request.scope
    person = get_object_or_404(User.objects.select_related("plan"), pk=user_id)
    if not scope.may_see_user(person):
        raise Http404("No such user.")
    form, filters = filters_from_request(request, scope)
    filters.plan = ""

    plan_form = overrides = None
    if scope.is_staff:
        if request.method == "POST":
            plan_form = PlanForm(request.POST, instance=person, prefix="plan")
            overrides = OverrideFormSet(request.POST, instance=person, prefix="limits")
            if plan_form.is_valid() and overrides.is_valid():
                with transaction.atomic():
                    changes = save_limits(person, plan_form, overrides, request.user)
                flash.success(
                    request,
                    _("Saved. %(count)d changed values are in the audit trail.")
                    % {"count": len(changes)},
                )
                return redirect(request.get_full_path())
        else:
            plan_form = PlanForm(instance=person, prefix="plan")
            overrides = OverrideFormSet(instance=person, prefix="limits")
    elif request.method == "POST":
        raise Http404("Only staff change limits.")

    mine = Q(user_id=person.pk)
    series = queries.usage_series(filters, extra_q=mine)
    user_totals = queries.with_derived(
        {
            name: sum(row[name] for row in series)
            for name in ("messages", "cache_hit", "cache_miss", "completion", "reasoning", "cost")
        }
        | {"errors": sum(row["errors"] for row in series)}
    )
    user_totals["blocks"] = sum(row["blocks"] for row in series)
    audit = LimitChange.objects.filter(
        Q(target=f"user {person.pk}") | Q(target__startswith=f"user {person.pk}/")
    ).select_related("changed_by")[:AUDIT_ROWS]
    context = _context(
        request,
        "users",
        form,
        filters,
        person=person,
        totals=user_totals,
        charts=_usage_charts(filters, series, with_errors=False),
        failures=queries.latest_errors(filters, extra_q=mine, limit=RECENT_FAILURES),
        plan_form=plan_form,
        overrides=overrides,
        audit=audit,
        accesses=ConversationAccess.objects.filter(owner=person).select_related("viewer")[:50],
    )
    return render(request, "dashboard/user.html", context)


@require_GET
@dashboard_view
@staff_only
def conversation(request, conversation_id):
    """Show a conversation read-only to staff, and record that they opened it."""
    current = get_object_or_404(Conversation.objects.select_related("owner"), pk=conversation_id)
    ConversationAccess.objects.create(
        viewer=request.user,
        conversation=current,
        conversation_uuid=current.pk,
        owner=current.owner,
    )
    return render(
        request,
        "dashboard/conversation.html",
        {
            "section": "users",
            "scope": request.scope,
            "conversation": current,
            "messages_list": current.messages.all(),
            "query_prefix": "",
        },
    )


@require_GET
@dashboard_view
def models(request):
    form, filters = filters_from_request(request, request.scope)
    context = _context(request, "models", form, filters, rows=queries.model_rows(filters))
    return render(request, "dashboard/models.html", context)


@require_GET
@dashboard_view
def errors(request):
    form, filters = filters_from_request(request, request.scope)
    codes, series = queries.error_series(filters)
    shown = codes[: charts.SERIES_CLASSES - 1]
    chart_series = [
        charts.Series(code, [row["counts"].get(code, 0) for row in series]) for code in shown
    ]
    if len(codes) > len(shown):
        chart_series.append(
            charts.Series(
                _("other codes"),
                [sum(row["counts"].get(code, 0) for code in codes[len(shown) :]) for row in series],
            )
        )
    chart = charts.build(
        "errors-by-code",
        _("Errors per hour, by code") if filters.period.hourly else _("Errors per day, by code"),
        [row["bucket"] for row in series],
        chart_series or [charts.Series(_("Failed replies"), [0 for _row in series])],
    )
    context = _context(
        request,
        "errors",
        form,
        filters,
        chart=chart,
        codes=queries.code_totals(filters),
        latest=queries.latest_errors(filters),
    )
    return render(request, "dashboard/errors.html", context)


@require_GET
@dashboard_view
def users_csv(request):
    _form, filters = filters_from_request(request, request.scope)
    search = request.GET.get("q", "").strip()[:200]
    sort = request.GET.get("sort", "-cost")
    return exports.users_csv(filters, search=search, sort=sort)


@require_GET
@dashboard_view
def days_csv(request):
    _form, filters = filters_from_request(request, request.scope)
    return exports.days_csv(filters)
