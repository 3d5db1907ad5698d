from django.core.management.base import BaseCommand, CommandError
from django.db import connection

from dashboard import rollups


class Command(BaseCommand):
    help = (
        "Recount the dashboard's daily usage rollups from the whole usage ledger, with days "
        "in QUOTA_TIME_ZONE from QUOTA_RESET_AT. Writes to the ledger wait until it ends."
    )

    def handle(self, *args, **options):
        if connection.vendor != "postgresql":
            raise CommandError(
                f"The rollups need PostgreSQL; this database is {connection.vendor}. "
                "Set DATABASE_URL to a PostgreSQL database."
            )
        rollups.rebuild()
        self.stdout.write("Rebuilt the usage rollups.")
