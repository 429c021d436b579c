# The account models moved to dvr.accounts (round 2), keeping their tables: they leave
# the inventory app's state only (see accounts.0001_initial). No table is dropped.

from django.db import migrations


class Migration(migrations.Migration):

    dependencies = [
        ("inventory", "0001_initial"),
        ("accounts", "0001_initial"),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            database_operations=[],
            state_operations=[
                migrations.DeleteModel(name="BungieToken"),
                migrations.DeleteModel(name="DestinyMembership"),
                migrations.DeleteModel(name="BungieAccount"),
            ],
        ),
    ]
