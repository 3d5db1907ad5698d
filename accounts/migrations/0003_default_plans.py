from django.db import migrations

DEFAULT_PLANS = [
    ("guest", "Guest"),
    ("free", "Free"),
    ("team", "Team"),
    ("staff", "Staff"),
]


def create_plans(apps, schema_editor):
    Plan = apps.get_model("accounts", "Plan")
    for slug, name in DEFAULT_PLANS:
        Plan.objects.get_or_create(slug=slug, defaults={"name": name})


class Migration(migrations.Migration):
    dependencies = [("accounts", "0002_plans")]

    operations = [migrations.RunPython(create_plans, migrations.RunPython.noop)]
