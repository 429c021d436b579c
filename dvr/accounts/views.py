"""Login, logout and the account page: each view parses, calls one function, renders."""

from __future__ import annotations

from django.conf import settings
from django.contrib import messages
from django.contrib.auth import login, logout
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import redirect, render
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET, require_POST

from dvr.accounts.login import (
    LoginFailed,
    bungie_login,
    login_begin,
    login_check_callback_error,
    login_state_take,
    safe_next_path,
)
from dvr.accounts.overview import account_disconnect, account_overview


def _login_failed(request: HttpRequest, failed: LoginFailed) -> HttpResponse:
    failure = failed.failure
    context = {"title": failure.title, "message": failure.message, "status": failure.status}
    return render(request, "accounts/login_error.html", context, status=failure.status)


@never_cache
@require_GET
def login_start(request: HttpRequest) -> HttpResponse:
    next_path = safe_next_path(request.GET.get("next"), host=request.get_host())
    try:
        url = login_begin(session=request.session, next_path=next_path)
    except LoginFailed as failed:
        return _login_failed(request, failed)
    return HttpResponseRedirect(url)


@never_cache
@require_GET
def oauth_callback(request: HttpRequest) -> HttpResponse:
    try:
        next_path = login_state_take(session=request.session, state=request.GET.get("state"))
        login_check_callback_error(request.GET.get("error"))
        account = bungie_login(code=request.GET.get("code", ""))
    except LoginFailed as failed:
        return _login_failed(request, failed)
    login(request, account.user, backend="django.contrib.auth.backends.ModelBackend")  # rotates the session key
    # Checked again: the session is ours, but a path is only ever followed if it is local.
    return redirect(safe_next_path(next_path, host=request.get_host()) or settings.LOGIN_REDIRECT_URL)


@require_POST
def logout_view(request: HttpRequest) -> HttpResponse:
    logout(request)
    messages.success(request, "You are logged out.")
    return redirect("home")


@never_cache
@login_required
@require_GET
def account(request: HttpRequest) -> HttpResponse:
    return render(request, "accounts/account.html", {"overview": account_overview(user=request.user)})


@login_required
@require_POST
def disconnect(request: HttpRequest) -> HttpResponse:
    if account_disconnect(user=request.user):
        messages.success(request, "Disconnected: DVR no longer holds any Bungie tokens for you.")
    return redirect("accounts:account")
