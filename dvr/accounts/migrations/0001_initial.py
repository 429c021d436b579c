# The account models moved here from the inventory app (round 2). Their tables stay as
# they were (inventory_*): this migration creates them in Django's state only, and
# inventory.0002 removes them from the inventory app's state, so no row moves.

import django.db.models.deletion
from django.conf import settings
from django.db import migrations, models

MOVED = ("bungieaccount", "destinymembership", "bungietoken")


def _relabel(apps, *, old: str, new: str) -> None:
    content_type = apps.get_model("contenttypes", "ContentType")
    taken = set(content_type.objects.filter(app_label=new, model__in=MOVED).values_list("model", flat=True))
    content_type.objects.filter(app_label=old, model__in=set(MOVED) - taken).update(app_label=new)


def content_types_follow(apps, schema_editor):
    """Admin history and permissions name models by content type: move those rows too
    (unless the new label has its own already: then the old rows are left alone)."""
    _relabel(apps, old="inventory", new="accounts")


def content_types_return(apps, schema_editor):
    _relabel(apps, old="accounts", new="inventory")


class Migration(migrations.Migration):

    initial = True

    dependencies = [
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
        ("contenttypes", "0002_remove_content_type_name"),
        ("inventory", "0001_initial"),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            database_operations=[],
            state_operations=[
                migrations.CreateModel(
                    name='BungieAccount',
                    fields=[
                        ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                        ('membership_id', models.CharField(max_length=20, unique=True)),
                        ('unique_name', models.CharField(max_length=100)),
                        ('display_name', models.CharField(blank=True, max_length=100)),
                        ('created_at', models.DateTimeField(auto_now_add=True)),
                        ('updated_at', models.DateTimeField(auto_now=True)),
                        ('user', models.OneToOneField(on_delete=django.db.models.deletion.CASCADE, related_name='bungie_account', to=settings.AUTH_USER_MODEL)),
                    ],
                    options={
                        'db_table': 'inventory_bungieaccount',
                        'ordering': ['unique_name'],
                    },
                ),
                migrations.CreateModel(
                    name='BungieToken',
                    fields=[
                        ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                        ('access_token_encrypted', models.TextField()),
                        ('refresh_token_encrypted', models.TextField()),
                        ('access_expires_at', models.DateTimeField()),
                        ('refresh_expires_at', models.DateTimeField()),
                        ('updated_at', models.DateTimeField(auto_now=True)),
                        ('account', models.OneToOneField(on_delete=django.db.models.deletion.CASCADE, related_name='token', to='accounts.bungieaccount')),
                    ],
                    options={
                        'db_table': 'inventory_bungietoken',
                    },
                ),
                migrations.CreateModel(
                    name='DestinyMembership',
                    fields=[
                        ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                        ('membership_type', models.SmallIntegerField()),
                        ('membership_id', models.CharField(max_length=20)),
                        ('display_name', models.CharField(blank=True, max_length=100)),
                        ('cross_save_override', models.SmallIntegerField(default=0)),
                        ('applicable_membership_types', models.JSONField(default=list)),
                        ('is_primary', models.BooleanField(default=False)),
                        ('account', models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='memberships', to='accounts.bungieaccount')),
                    ],
                    options={
                        'db_table': 'inventory_destinymembership',
                        'ordering': ['-is_primary', 'membership_type', 'membership_id'],
                        'constraints': [models.UniqueConstraint(fields=('account', 'membership_type', 'membership_id'), name='membership_once')],
                    },
                ),
            ],
        ),
        migrations.RunPython(content_types_follow, content_types_return),
    ]
