from django.urls import path

from inventory import views

app_name = "inventory"
urlpatterns = [
    path("login/", views.login_start, name="login"),
    path("oauth/callback/", views.oauth_callback, name="oauth-callback"),
    path("logout/", views.logout_view, name="logout"),
    path("account/", views.account, name="account"),
    path("account/disconnect/", views.disconnect, name="disconnect"),
    path("inventory/", views.inventory, name="inventory"),
    path("inventory/item/<str:item_id>/", views.item, name="item"),
    path("inventory/move/", views.move, name="move"),
    path("inventory/equip/", views.equip, name="equip"),
    path("inventory/pull/", views.pull, name="pull"),
    path("inventory/vault-matching/", views.vault_matching, name="vault-matching"),
]
