"""Log in to Koji as the ordinary user that holds the `image` permission (never as admin).

`[koji] auth = "ssl"`: a client certificate (PEM with key), `ssl_login(cert=..., serverca=...)`.
`[koji] auth = "gssapi"`: a Kerberos principal from a keytab, `gssapi_login(principal, keytab)`.

The hub is probed with an anonymous call first: koji's login methods swallow connection errors
into a generic AuthError, and "the hub is down" must read differently from "your certificate was
refused". Every call is bounded by koji's own retry options, fed from the config.
"""

from __future__ import annotations

import os
from typing import Any

import koji
import requests

from shared.config import KojiConfig
from shared.errors import HubUnreachable, LoginFailed

# What a dead, refusing or overloaded hub raises through koji.ClientSession.
NETWORK_ERRORS: tuple[type[BaseException], ...] = (
    requests.exceptions.RequestException, koji.ServerOffline, ConnectionError, TimeoutError,
)


def session_opts(cfg: KojiConfig) -> dict[str, Any]:
    """koji.ClientSession opts: bounded retries (anonymous calls too) and a per-call timeout."""
    opts: dict[str, Any] = {
        "max_retries": cfg.retries,
        "retry_interval": cfg.retry_interval,
        "anon_retry": True,  # koji's default is to never retry calls made before login
        "timeout": cfg.timeout,
        "auth_timeout": cfg.timeout,
    }
    if cfg.serverca:
        opts["serverca"] = cfg.serverca
    return opts


def short(exc: BaseException) -> str:
    """An exception as one short line (requests errors can carry whole URLs and reprs)."""
    text = " ".join(str(exc).split()) or type(exc).__name__
    return text if len(text) <= 300 else text[:297] + "..."


def _readable(path: str, key: str) -> None:
    if not path:
        raise LoginFailed(f"koji.{key} is not set (needed for koji.auth)")
    if not os.access(path, os.R_OK):
        raise LoginFailed(f"koji.{key} {path} does not exist or is not readable")


def check_credentials(cfg: KojiConfig) -> None:
    """Fail early, naming the config key, when the credential files are missing."""
    if cfg.auth == "ssl":
        _readable(cfg.cert, "cert")
        if cfg.serverca:
            _readable(cfg.serverca, "serverca")
    else:
        if not cfg.principal:
            raise LoginFailed("koji.principal is not set (needed for koji.auth = \"gssapi\")")
        _readable(cfg.keytab, "keytab")


def login(cfg: KojiConfig) -> tuple[koji.ClientSession, dict[str, Any]]:
    """A logged-in ClientSession and the user it is logged in as (getLoggedInUser)."""
    check_credentials(cfg)
    session = koji.ClientSession(cfg.hub, opts=session_opts(cfg))
    try:
        session.getAPIVersion()
    except NETWORK_ERRORS as exc:
        raise HubUnreachable(
            f"Koji hub {cfg.hub} is unreachable after {cfg.retries + 1} attempt(s): {short(exc)}"
        ) from None
    try:
        if cfg.auth == "ssl":
            session.ssl_login(cert=cfg.cert, serverca=cfg.serverca or None)
        else:
            session.gssapi_login(principal=cfg.principal, keytab=cfg.keytab)
        user = session.getLoggedInUser()
    except NETWORK_ERRORS as exc:
        raise HubUnreachable(f"Koji hub {cfg.hub} failed during login: {short(exc)}") from None
    except koji.GenericError as exc:  # AuthError, GSSAPIAuthError, faults from the hub
        raise LoginFailed(f"Koji login ({cfg.auth}) to {cfg.hub} failed: {short(exc)}") from None
    if not user:
        raise LoginFailed(f"Koji login ({cfg.auth}) to {cfg.hub} gave no session")
    return session, user
