"""`manage.py runsimulator`: serve the DeepSeek API simulator from chat.simulator."""

from django.core.management.base import BaseCommand, CommandError

from chat.simulator import add_server_arguments, defaults_from_arguments, run


class Command(BaseCommand):
    help = "Serve a local stand-in for DeepSeek's streaming chat-completions API."

    def add_arguments(self, parser):
        add_server_arguments(parser)

    def handle(self, *args, **options):
        try:
            defaults = defaults_from_arguments(
                options["token_rate"],
                options["queue_delay"],
                options["keepalive_interval"],
                options["flavor"],
            )
        except ValueError as exc:
            raise CommandError(str(exc)) from exc
        run(options["host"], options["port"], options["api_key"], defaults)
