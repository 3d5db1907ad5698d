"""CSV exports of the per-user and per-day tables, with the filters of the page they came from.

Figures are written unformatted (dot decimals, no grouping) so spreadsheets
and scripts read them in any language; headers stay in English for the same
reason.
"""

import csv

from django.http import HttpResponse

from . import queries

# Users per query; each query aggregates the whole range again, so batches are large.
EXPORT_BATCH = 50_000


def _cell(text: str) -> str:
    """Return text that a spreadsheet shows as text, never runs as a formula."""
    if text[:1] in ("=", "+", "-", "@", "\t", "\r"):
        return "'" + text
    return text


def _response(filename):
    response = HttpResponse(content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="{filename}"'
    return response


def _period_name(filters):
    return f"{filters.period.first_day:%Y%m%d}-{filters.period.last_day:%Y%m%d}"


def users_csv(filters, *, search="", sort="-cost"):
    key = sort.lstrip("-")
    if key not in queries.USER_SORTS:
        key, sort = "cost", "-cost"
    response = _response(f"usage-users-{_period_name(filters)}.csv")
    writer = csv.writer(response)
    writer.writerow(
        [
            "user_id",
            "email",
            "guest",
            "replies",
            "tokens",
            "cost_usd",
            "cost_cny",
            "quota_blocks",
            "last_active",
        ]
    )
    page = 1
    while True:
        result = queries.user_rows(
            filters,
            search=search,
            sort=key,
            descending=sort.startswith("-"),
            page=page,
            per_page=EXPORT_BATCH,
        )
        for row in result.rows:
            writer.writerow(
                [
                    row["id"],
                    _cell(row["email"]),
                    "yes" if row["is_guest"] else "no",
                    row["messages"],
                    row["tokens"],
                    f"{row['cost']:.8f}",
                    f"{row['cost_cny']:.4f}",
                    row["blocks"],
                    row["last_active"].isoformat() if row["last_active"] else "",
                ]
            )
        if page * EXPORT_BATCH >= result.total:
            break
        page += 1
    return response


def days_csv(filters):
    series = queries.usage_series(filters)
    unit = "hour" if filters.period.hourly else "day"
    response = _response(f"usage-{unit}s-{_period_name(filters)}.csv")
    writer = csv.writer(response)
    writer.writerow(
        [
            unit,
            "replies",
            "prompt_cache_hit_tokens",
            "prompt_cache_miss_tokens",
            "reasoning_tokens",
            "answer_tokens",
            "cost_usd",
            "cost_cny",
            "quota_blocks",
            "errors",
        ]
    )
    for row in series:
        writer.writerow(
            [
                row["bucket"].isoformat(),
                row["messages"],
                row["cache_hit"],
                row["cache_miss"],
                row["reasoning"],
                row["answer"],
                f"{row['cost']:.8f}",
                f"{row['cost_cny']:.4f}",
                row["blocks"],
                row["errors"],
            ]
        )
    return response
