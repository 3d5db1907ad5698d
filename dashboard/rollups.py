"""Daily rollups of the usage ledger, kept exact by a PostgreSQL trigger.

The dashboard reads whole quota days from dashboard_usagedaily and
dashboard_latencydaily instead of scanning every ledger row. A row trigger
on chat_usagerecord adds each inserted row to both tables and subtracts each
deleted one (an update subtracts the old row and adds the new one), inside
the transaction that changes the ledger, so the sums never drift.

The quota day of a row depends on QUOTA_TIME_ZONE and QUOTA_RESET_AT. The
settings the rollups were built with are stored in dashboard_rollupstate;
while they differ from the running settings (or on a database other than
PostgreSQL) `is_current()` is false and the dashboard reads the ledger
itself. `rebuild()` recounts everything with the current settings; the
post-migrate hook and `manage.py rebuild_usage_rollups` call it.
"""

import logging

from django.conf import settings
from django.db import connection, transaction
from django.utils import timezone

logger = logging.getLogger(__name__)

# Latency buckets: 100 ms wide up to 10 s, 1 s wide up to 120 s, 10 s wide above. Each
# bucket includes its upper edge, like a Prometheus "le" bound, and bucket 0 includes 0.
FINE_LIMIT_MS = 10_000
MEDIUM_LIMIT_MS = 120_000
FINE_WIDTH_MS = 100
MEDIUM_WIDTH_MS = 1_000
COARSE_WIDTH_MS = 10_000
FINE_BUCKETS = FINE_LIMIT_MS // FINE_WIDTH_MS
MEDIUM_BUCKETS = (MEDIUM_LIMIT_MS - FINE_LIMIT_MS) // MEDIUM_WIDTH_MS


def bucket_of(ms: int) -> int:
    """Return the latency bucket of a time in milliseconds, as the SQL function does."""
    below = max(ms, 1) - 1
    if below < FINE_LIMIT_MS:
        return below // FINE_WIDTH_MS
    if below < MEDIUM_LIMIT_MS:
        return FINE_BUCKETS + (below - FINE_LIMIT_MS) // MEDIUM_WIDTH_MS
    return FINE_BUCKETS + MEDIUM_BUCKETS + (below - MEDIUM_LIMIT_MS) // COARSE_WIDTH_MS


def bucket_edge(index: int) -> int:
    """Return the upper edge in milliseconds of bucket `index - 1` (edge 0 is 0)."""
    if index <= FINE_BUCKETS:
        return index * FINE_WIDTH_MS
    if index <= FINE_BUCKETS + MEDIUM_BUCKETS:
        return FINE_LIMIT_MS + (index - FINE_BUCKETS) * MEDIUM_WIDTH_MS
    return MEDIUM_LIMIT_MS + (index - FINE_BUCKETS - MEDIUM_BUCKETS) * COARSE_WIDTH_MS


def bucket_range(bucket: int) -> tuple[int, int]:
    """Return the smallest and largest millisecond values in `bucket`, both included."""
    low = 0 if bucket == 0 else bucket_edge(bucket) + 1
    return low, bucket_edge(bucket + 1)


BUCKET_FUNCTION = f"""
CREATE OR REPLACE FUNCTION dashboard_latency_bucket(ms integer) RETURNS integer
LANGUAGE sql IMMUTABLE AS $$
    SELECT CASE
        WHEN below < {FINE_LIMIT_MS} THEN below / {FINE_WIDTH_MS}
        WHEN below < {MEDIUM_LIMIT_MS}
            THEN {FINE_BUCKETS} + (below - {FINE_LIMIT_MS}) / {MEDIUM_WIDTH_MS}
        ELSE {FINE_BUCKETS + MEDIUM_BUCKETS} + (below - {MEDIUM_LIMIT_MS}) / {COARSE_WIDTH_MS}
    END
    FROM (SELECT GREATEST(ms, 1) - 1 AS below) AS shifted
$$;
"""

# Adds one ledger row, times `sign` (1 or -1), to both rollups.
ADD_FUNCTION = """
CREATE OR REPLACE FUNCTION dashboard_rollup_add(
    r chat_usagerecord, sign integer, zone text, reset interval
) RETURNS void LANGUAGE plpgsql AS $$
DECLARE
    row_day date := ((r.created_at AT TIME ZONE zone) - reset)::date;
    streamed boolean := r.completion_tokens > 0
        AND r.duration_ms > r.time_to_first_token_ms;
BEGIN
    INSERT INTO dashboard_usagedaily AS d (
        day, team_key, plan, model_key, model_id, outcome, error_code,
        reply_count, cache_hit_tokens, cache_miss_tokens, completion_tokens, reasoning_tokens,
        cost_usd, streamed_completion_tokens, streaming_time_ms
    ) VALUES (
        row_day, COALESCE(r.team_id, 0), r.plan, COALESCE(r.chat_model_id, 0), r.model_id,
        r.outcome, r.error_code,
        sign, sign * r.prompt_cache_hit_tokens, sign * r.prompt_cache_miss_tokens,
        sign * r.completion_tokens, sign * r.reasoning_tokens, sign * r.cost_usd,
        CASE WHEN streamed THEN sign * r.completion_tokens ELSE 0 END,
        CASE WHEN streamed THEN sign * (r.duration_ms - r.time_to_first_token_ms) ELSE 0 END
    )
    ON CONFLICT (day, team_key, plan, model_key, model_id, outcome, error_code) DO UPDATE SET
        reply_count = d.reply_count + EXCLUDED.reply_count,
        cache_hit_tokens = d.cache_hit_tokens + EXCLUDED.cache_hit_tokens,
        cache_miss_tokens = d.cache_miss_tokens + EXCLUDED.cache_miss_tokens,
        completion_tokens = d.completion_tokens + EXCLUDED.completion_tokens,
        reasoning_tokens = d.reasoning_tokens + EXCLUDED.reasoning_tokens,
        cost_usd = d.cost_usd + EXCLUDED.cost_usd,
        streamed_completion_tokens = d.streamed_completion_tokens
            + EXCLUDED.streamed_completion_tokens,
        streaming_time_ms = d.streaming_time_ms + EXCLUDED.streaming_time_ms;

    IF r.user_id IS NOT NULL THEN
        INSERT INTO dashboard_userdaily AS u
            (day, user_id, team_key, plan, reply_count, tokens, cost_usd, last_reply_at)
        VALUES (row_day, r.user_id, COALESCE(r.team_id, 0), r.plan, sign,
                sign * (r.prompt_cache_hit_tokens + r.prompt_cache_miss_tokens
                        + r.completion_tokens),
                sign * r.cost_usd, CASE WHEN sign > 0 THEN r.created_at END)
        ON CONFLICT (day, user_id, team_key, plan) DO UPDATE SET
            reply_count = u.reply_count + EXCLUDED.reply_count,
            tokens = u.tokens + EXCLUDED.tokens,
            cost_usd = u.cost_usd + EXCLUDED.cost_usd,
            last_reply_at = GREATEST(u.last_reply_at, EXCLUDED.last_reply_at);
        IF sign < 0 THEN
            -- A removed row may have been the newest, so read the newest remaining one.
            -- Rows of one quota day lie within 25 hours of each other; the bounds let
            -- the ledger's (user, created_at) index find them.
            UPDATE dashboard_userdaily AS u SET last_reply_at = (
                SELECT max(created_at) FROM chat_usagerecord AS ledger
                WHERE ledger.user_id = r.user_id
                  AND COALESCE(ledger.team_id, 0) = COALESCE(r.team_id, 0)
                  AND ledger.plan = r.plan
                  AND ((ledger.created_at AT TIME ZONE zone) - reset)::date = row_day
                  AND ledger.created_at >= r.created_at - interval '2 days'
                  AND ledger.created_at <= r.created_at + interval '2 days'
            )
            WHERE u.day = row_day AND u.user_id = r.user_id
              AND u.team_key = COALESCE(r.team_id, 0) AND u.plan = r.plan;
        END IF;
    END IF;
    IF r.time_to_first_token_ms IS NOT NULL THEN
        INSERT INTO dashboard_latencydaily AS l
            (measure, day, model_key, model_id, bucket, reply_count, sum_ms)
        VALUES ('ttft', row_day, COALESCE(r.chat_model_id, 0), r.model_id,
                dashboard_latency_bucket(r.time_to_first_token_ms), sign,
                sign * r.time_to_first_token_ms)
        ON CONFLICT (measure, day, model_key, model_id, bucket) DO UPDATE SET
            reply_count = l.reply_count + EXCLUDED.reply_count, sum_ms = l.sum_ms + EXCLUDED.sum_ms;
    END IF;
    IF r.duration_ms IS NOT NULL THEN
        INSERT INTO dashboard_latencydaily AS l
            (measure, day, model_key, model_id, bucket, reply_count, sum_ms)
        VALUES ('duration', row_day, COALESCE(r.chat_model_id, 0), r.model_id,
                dashboard_latency_bucket(r.duration_ms), sign, sign * r.duration_ms)
        ON CONFLICT (measure, day, model_key, model_id, bucket) DO UPDATE SET
            reply_count = l.reply_count + EXCLUDED.reply_count, sum_ms = l.sum_ms + EXCLUDED.sum_ms;
    END IF;
END;
$$;
"""

TRIGGER_FUNCTION = """
CREATE OR REPLACE FUNCTION dashboard_rollup_trigger() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    zone text;
    reset interval;
BEGIN
    SELECT time_zone, CAST(reset_at AS interval) INTO zone, reset
    FROM dashboard_rollupstate WHERE id = 1;
    IF zone IS NULL THEN
        RETURN NULL;
    END IF;
    IF TG_OP = 'UPDATE' AND (
        OLD.created_at, OLD.team_id, OLD.plan, OLD.chat_model_id, OLD.model_id, OLD.outcome,
        OLD.error_code, OLD.prompt_cache_hit_tokens, OLD.prompt_cache_miss_tokens,
        OLD.completion_tokens, OLD.reasoning_tokens, OLD.cost_usd,
        OLD.time_to_first_token_ms, OLD.duration_ms
    ) IS NOT DISTINCT FROM (
        NEW.created_at, NEW.team_id, NEW.plan, NEW.chat_model_id, NEW.model_id, NEW.outcome,
        NEW.error_code, NEW.prompt_cache_hit_tokens, NEW.prompt_cache_miss_tokens,
        NEW.completion_tokens, NEW.reasoning_tokens, NEW.cost_usd,
        NEW.time_to_first_token_ms, NEW.duration_ms
    ) THEN
        RETURN NULL;
    END IF;
    IF TG_OP IN ('UPDATE', 'DELETE') THEN
        PERFORM dashboard_rollup_add(OLD, -1, zone, reset);
    END IF;
    IF TG_OP IN ('UPDATE', 'INSERT') THEN
        PERFORM dashboard_rollup_add(NEW, 1, zone, reset);
    END IF;
    RETURN NULL;
END;
$$;
"""

CREATE_TRIGGER = """
DROP TRIGGER IF EXISTS dashboard_rollup ON chat_usagerecord;
CREATE TRIGGER dashboard_rollup
AFTER INSERT OR UPDATE OR DELETE ON chat_usagerecord
FOR EACH ROW EXECUTE FUNCTION dashboard_rollup_trigger();
"""

DROP_ALL = """
DROP TRIGGER IF EXISTS dashboard_rollup ON chat_usagerecord;
DROP FUNCTION IF EXISTS dashboard_rollup_trigger();
DROP FUNCTION IF EXISTS dashboard_rollup_add(chat_usagerecord, integer, text, interval);
DROP FUNCTION IF EXISTS dashboard_latency_bucket(integer);
"""

REBUILD_USAGE = """
INSERT INTO dashboard_usagedaily (
    day, team_key, plan, model_key, model_id, outcome, error_code,
    reply_count, cache_hit_tokens, cache_miss_tokens, completion_tokens, reasoning_tokens,
    cost_usd, streamed_completion_tokens, streaming_time_ms
)
SELECT ((created_at AT TIME ZONE %(zone)s) - CAST(%(reset)s AS interval))::date,
       COALESCE(team_id, 0), plan, COALESCE(chat_model_id, 0), model_id, outcome, error_code,
       count(*), sum(prompt_cache_hit_tokens), sum(prompt_cache_miss_tokens),
       sum(completion_tokens), sum(reasoning_tokens), sum(cost_usd),
       COALESCE(sum(completion_tokens) FILTER (WHERE completion_tokens > 0
           AND duration_ms > time_to_first_token_ms), 0),
       COALESCE(sum(duration_ms - time_to_first_token_ms) FILTER (WHERE completion_tokens > 0
           AND duration_ms > time_to_first_token_ms), 0)
FROM chat_usagerecord
GROUP BY 1, 2, 3, 4, 5, 6, 7
"""

REBUILD_USERS = """
INSERT INTO dashboard_userdaily (
    day, user_id, team_key, plan, reply_count, tokens, cost_usd, last_reply_at
)
SELECT ((created_at AT TIME ZONE %(zone)s) - CAST(%(reset)s AS interval))::date,
       user_id, COALESCE(team_id, 0), plan, count(*),
       sum(prompt_cache_hit_tokens + prompt_cache_miss_tokens + completion_tokens),
       sum(cost_usd), max(created_at)
FROM chat_usagerecord
WHERE user_id IS NOT NULL
GROUP BY 1, 2, 3, 4
"""

REBUILD_LATENCY = """
INSERT INTO dashboard_latencydaily (measure, day, model_key, model_id, bucket, reply_count, sum_ms)
SELECT %(measure)s,
       ((created_at AT TIME ZONE %(zone)s) - CAST(%(reset)s AS interval))::date,
       COALESCE(chat_model_id, 0), model_id, dashboard_latency_bucket({column}),
       count(*), sum({column})
FROM chat_usagerecord
WHERE {column} IS NOT NULL
GROUP BY 1, 2, 3, 4, 5
"""


def install(schema_editor=None):
    """Create the SQL functions and the trigger; a no-op on databases other than PostgreSQL."""
    conn = schema_editor.connection if schema_editor else connection
    if conn.vendor != "postgresql":
        return
    with conn.cursor() as cursor:
        for statement in (BUCKET_FUNCTION, ADD_FUNCTION, TRIGGER_FUNCTION, CREATE_TRIGGER):
            cursor.execute(statement)


def uninstall(schema_editor=None):
    conn = schema_editor.connection if schema_editor else connection
    if conn.vendor != "postgresql":
        return
    with conn.cursor() as cursor:
        cursor.execute(DROP_ALL)


def is_current() -> bool:
    """Return whether the rollups count days with the running QUOTA_* settings."""
    from .models import RollupState

    if connection.vendor != "postgresql":
        return False
    state = RollupState.objects.filter(pk=1).first()
    return (
        state is not None
        and state.time_zone == settings.QUOTA_TIME_ZONE
        and state.reset_at == settings.QUOTA_RESET_AT
    )


def rebuild(using_connection=None):
    """Recount both rollups from the whole ledger with the current QUOTA_* settings.

    The ledger is locked against writes meanwhile (SHARE mode), so no reply
    that ends during the rebuild is counted twice or missed; such replies
    wait for the rebuild's commit.
    """
    conn = using_connection or connection
    if conn.vendor != "postgresql":
        return
    params = {"zone": settings.QUOTA_TIME_ZONE, "reset": settings.QUOTA_RESET_AT}
    with transaction.atomic(using=conn.alias), conn.cursor() as cursor:
        cursor.execute("LOCK TABLE chat_usagerecord IN SHARE MODE")
        cursor.execute("DELETE FROM dashboard_usagedaily")
        cursor.execute("DELETE FROM dashboard_latencydaily")
        cursor.execute("DELETE FROM dashboard_userdaily")
        cursor.execute(REBUILD_USAGE, params)
        cursor.execute(REBUILD_USERS, params)
        for measure, column in (("ttft", "time_to_first_token_ms"), ("duration", "duration_ms")):
            cursor.execute(REBUILD_LATENCY.format(column=column), {**params, "measure": measure})
        cursor.execute(
            "INSERT INTO dashboard_rollupstate (id, time_zone, reset_at, rebuilt_at) "
            "VALUES (1, %(zone)s, %(reset)s, %(now)s) ON CONFLICT (id) DO UPDATE SET "
            "time_zone = EXCLUDED.time_zone, reset_at = EXCLUDED.reset_at, "
            "rebuilt_at = EXCLUDED.rebuilt_at",
            {**params, "now": timezone.now()},
        )
    logger.info(
        "Rebuilt the usage rollups for days in %s from %s",
        settings.QUOTA_TIME_ZONE,
        settings.QUOTA_RESET_AT,
    )


def rebuild_if_stale(sender, using="default", **kwargs):
    """Rebuild after `migrate` when the QUOTA_* settings changed since the last build."""
    from django.db import connections

    conn = connections[using]
    if conn.vendor != "postgresql":
        return
    from .models import RollupState, UserDaily

    # A partial or backward migrate may leave the rollup tables missing.
    if UserDaily._meta.db_table not in conn.introspection.table_names():
        return

    state = RollupState.objects.using(using).filter(pk=1).first()
    if (
        state is None
        or state.time_zone != settings.QUOTA_TIME_ZONE
        or state.reset_at != settings.QUOTA_RESET_AT
    ):
        rebuild(conn)
