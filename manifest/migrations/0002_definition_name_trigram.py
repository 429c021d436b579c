"""A trigram index for name search on Postgres (`/manifest/search/`); nothing elsewhere.

Django's ``icontains`` on Postgres compares ``UPPER(name)``, so that is what is indexed.
"""

from django.db import migrations


def create_index(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    schema_editor.execute("CREATE EXTENSION IF NOT EXISTS pg_trgm")
    schema_editor.execute(
        "CREATE INDEX IF NOT EXISTS definition_name_trgm ON manifest_definition USING gin (UPPER(name) gin_trgm_ops)"
    )


def drop_index(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute("DROP INDEX IF EXISTS definition_name_trgm")


class Migration(migrations.Migration):
    dependencies = [("manifest", "0001_initial")]

    operations = [migrations.RunPython(create_index, drop_index, elidable=False)]
