"""The default plans and their limits, present in every database.

Created after every `migrate` (and after a test database is flushed), and
never overwritten: staff edit them in the admin.
"""

from .models import Plan, PlanLimit

PLANS = {
    Plan.GUEST: "Guest",
    Plan.FREE: "Free",
    Plan.TEAM: "Team",
    Plan.STAFF: "Staff",
}

# (plan, model class) -> (messages a day, messages a minute, replies in flight).
# None is no limit. The thinking caps are the product's: guests 10 a day
# and signed-up users 50, the figure widely reported for DeepSeek's free
# web chat; teams get caps from their team admin, staff none.
LIMITS = {
    (Plan.GUEST, "thinking"): (10, 3, 1),
    (Plan.GUEST, "instant"): (20, 5, 1),
    (Plan.FREE, "thinking"): (50, 5, 1),
    (Plan.FREE, "instant"): (100, 10, 1),
    (Plan.TEAM, "thinking"): (None, 10, 2),
    (Plan.TEAM, "instant"): (None, 20, 2),
    (Plan.STAFF, "thinking"): (None, None, 5),
    (Plan.STAFF, "instant"): (None, None, 5),
}


def ensure_default_plans(sender=None, **kwargs):
    for slug, name in PLANS.items():
        Plan.objects.get_or_create(slug=slug, defaults={"name": name})
    plans = {plan.slug: plan for plan in Plan.objects.filter(slug__in=PLANS)}
    for (slug, model_class), (per_day, per_minute, in_flight) in LIMITS.items():
        PlanLimit.objects.get_or_create(
            plan=plans[slug],
            model_class=model_class,
            defaults={
                "messages_per_day": per_day,
                "messages_per_minute": per_minute,
                "max_in_flight": in_flight,
            },
        )
