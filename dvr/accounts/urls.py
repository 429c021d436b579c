from django.urls import path

from dvr.accounts import views

app_name = "accounts"
urlpatterns = [
    path("login/", views.login_start, name="login"),
    path("oauth/callback/", views.oauth_callback, name="oauth-callback"),
    path("logout/", views.logout_view, name="logout"),
    path("account/", views.account, name="account"),
    path("account/disconnect/", views.disconnect, name="disconnect"),
]
