from django.apps import AppConfig


class AccountsConfig(AppConfig):
    name = "dvr.accounts"
    # The models moved here from `inventory` keep their tables (Meta.db_table).
    label = "accounts"
    verbose_name = "Players"
