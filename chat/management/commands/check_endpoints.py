"""`manage.py check_endpoints`: check every active endpoint and model, for scripts and cron."""

from django.core.management.base import BaseCommand, CommandError

from chat.health import check_all


class Command(BaseCommand):
    help = (
        "List each active endpoint's models and ask each active model for a short reply. "
        "Prints one line per check and exits with status 1 if any check failed."
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "--endpoint",
            metavar="SLUG",
            help="check only the active endpoint with this slug",
        )

    def handle(self, *args, **options):
        slug = options["endpoint"]
        results = check_all(slug)
        if slug is not None and not results:
            raise CommandError(f"No active endpoint has the slug {slug!r}.")

        checks = [(health, check) for health in results for check in health.checks]
        for health, check in checks:
            self.stdout.write(format_check(health.slug, check))
        failed = sum(1 for _, check in checks if not check.ok)
        if failed:
            raise CommandError(f"{failed} of {len(checks)} checks failed.", returncode=1)


def format_check(endpoint_slug, check) -> str:
    """Format one check as `endpoint  target  ok|FAILED  latency  problem (HTTP status): detail`."""
    outcome = "ok" if check.ok else "FAILED"
    latency = f"{check.latency_ms} ms"
    if check.first_event_ms is not None:
        latency = f"first event {check.first_event_ms} ms, total {latency}"
    line = f"{endpoint_slug}  {check.target}  {outcome}  {latency}"
    if check.problem:
        line += f"  {check.problem}"
        if check.status is not None:
            line += f" (HTTP {check.status})"
        if check.detail:
            line += f": {check.detail}"
    elif check.detail:
        line += f"  {check.detail}"
    return line
