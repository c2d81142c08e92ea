"""Who is asking the dashboard, decided apart from the HTTP server.

A request is made by one of these, first match wins:

- a user an authenticating proxy vouches for (oauth2-proxy, an OIDC ingress): the value of the header the
  `dashboard_user_header` setting names, and only when it names one;
- an API client with `Authorization: Bearer <token>`, the dashboard's token (`dashboard_token` or
  `dashboard_token_file`, e.g. a mounted Secret);
- a browser logged in with that token: its session cookie (HttpOnly, SameSite=Strict), for `dashboard_session_s`;
- a client on loopback (`local`), unless `dashboard_login_on_loopback` asks it to log in too, or the request
  was relayed by a proxy on this machine (it names whom it forwards for).

Anyone else is asked to log in, and without a login configured is refused. Browsers (everyone but a bearer
client) also need the action token of their identity to act (`requests.Guard`): it is derived from a secret
made at start and the identity, so it is handed only to whom it belongs, in the page served to them, and a
session's ends with it.
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import secrets
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from http.cookies import CookieError, SimpleCookie
from typing import Literal

from ops.dashboard.requests import Headers
from topology.settings import Settings

SESSION_COOKIE = "oms_session"
LOCAL_USER = "local"
BEARER_USER = "token"
MIN_TOKEN_CHARS = 16
MAX_SESSIONS = 10_000
MAX_USER_CHARS = 200
# A proxy on this machine that relays a request from elsewhere says so in one of these.
FORWARDING_HEADERS = ("Forwarded", "X-Forwarded-For", "X-Real-IP")

Via = Literal["proxy", "bearer", "session", "loopback"]


@dataclass(frozen=True)
class Caller:
    """Who asks (`user`, as the audit names them), and how they were recognized."""

    user: str
    via: Via
    key: str = field(repr=False)
    """What their action token is derived from: their session, or themselves."""

    @property
    def acts_from_a_browser(self) -> bool:
        """Whether a browser sends its requests on its own (a cookie, a proxy's session, loopback): then an action
        needs the page's own origin and action token. A bearer token is sent by the client that holds it."""
        return self.via != "bearer"


@dataclass(frozen=True)
class Unknown:
    """A request from nobody the dashboard knows: why, and whether logging in would help."""

    reason: str
    can_log_in: bool


@dataclass(frozen=True)
class AccessPolicy:
    """The settings of who may use the dashboard."""

    token: str | None = None
    user_header: str | None = None
    login_on_loopback: bool = False
    session_s: float = 8 * 3600.0

    @classmethod
    def of(cls, settings: Settings) -> AccessPolicy:
        """The policy `settings` describe; a token read from its file. Raises ValueError for a token too short to
        withstand guessing, or given twice."""
        token = settings.dashboard_token.get_secret_value() if settings.dashboard_token is not None else None
        if settings.dashboard_token_file is not None:
            if token is not None:
                raise ValueError("set OMS_DASHBOARD_TOKEN or OMS_DASHBOARD_TOKEN_FILE, not both")
            token = settings.dashboard_token_file.read_text().strip()
        if token is not None and len(token) < MIN_TOKEN_CHARS:
            raise ValueError(f"the dashboard's token has fewer than {MIN_TOKEN_CHARS} characters: make a random one")
        return cls(
            token=token or None,
            user_header=(settings.dashboard_user_header or "").strip() or None,
            login_on_loopback=settings.dashboard_login_on_loopback,
            session_s=settings.dashboard_session_s,
        )


class Sessions:
    """Logged-in browsers: a random id each, and whom it is for, until it expires or is closed."""

    def __init__(self, lifetime_s: float, clock: Callable[[], float] = time.monotonic) -> None:
        self._lifetime_s, self._clock = lifetime_s, clock
        self._ends: dict[str, tuple[float, str]] = {}
        self._lock = threading.Lock()

    def open(self, user: str) -> str:
        session = secrets.token_urlsafe(32)
        with self._lock:
            now = self._clock()
            for expired in [sid for sid, (ends, _) in self._ends.items() if ends <= now]:
                del self._ends[expired]
            while len(self._ends) >= MAX_SESSIONS:  # the oldest goes first: dicts keep insertion order
                del self._ends[next(iter(self._ends))]
            self._ends[session] = (now + self._lifetime_s, user)
        return session

    def user(self, session: str) -> str | None:
        """Whom `session` is for; None once it has expired or was closed, or if it never was."""
        with self._lock:
            found = self._ends.get(session)
            if found is None:
                return None
            if found[0] <= self._clock():
                del self._ends[session]
                return None
            return found[1]

    def close(self, session: str) -> None:
        with self._lock:
            self._ends.pop(session, None)


class Access:
    """Recognizes callers by `policy`, keeps the sessions of those who log in, and makes their action tokens."""

    def __init__(self, policy: AccessPolicy, clock: Callable[[], float] = time.monotonic) -> None:
        self.policy = policy
        self.sessions = Sessions(policy.session_s, clock)
        self._secret = secrets.token_bytes(32)

    @property
    def login_form(self) -> bool:
        """Whether a browser can log in here with the token."""
        return self.policy.token is not None

    def caller(self, peer: str, headers: Headers) -> Caller | Unknown:
        """Who sent a request from address `peer` with `headers`."""
        policy = self.policy
        if policy.user_header is not None:
            user = printable(headers.get(policy.user_header) or "")
            if user:
                return Caller(user, "proxy", f"proxy:{user}")
        authorization = headers.get("Authorization")
        if authorization is not None:
            return self._bearer(authorization)
        session = session_of(headers.get("Cookie"))
        if session is not None:
            logged_in = self.sessions.user(session)
            if logged_in is not None:
                return Caller(logged_in, "session", f"session:{session}")
        if not policy.login_on_loopback and is_local(peer, headers):
            return Caller(LOCAL_USER, "loopback", "loopback")
        return self.stranger()

    def stranger(self) -> Unknown:
        """What someone the dashboard does not know is told: how to log in, if they can."""
        policy = self.policy
        if policy.token is None and policy.user_header is None:
            return Unknown(
                "this dashboard serves loopback clients only: no login is configured (OMS_DASHBOARD_TOKEN, "
                "OMS_DASHBOARD_TOKEN_FILE or OMS_DASHBOARD_USER_HEADER)",
                can_log_in=False,
            )
        if policy.token is None:
            return Unknown(f"log in through the proxy that sets {policy.user_header}", can_log_in=False)
        return Unknown("log in first (/login), or send Authorization: Bearer with the dashboard's token", True)

    def log_in(self, offered: str, name: str = "") -> str | None:
        """A new session for a browser that gave the dashboard's token, for `name` (who they say they are, for the
        audit; `token` if they say nothing); None if it is not the token."""
        if self.policy.token is None or not hmac.compare_digest(offered.encode(), self.policy.token.encode()):
            return None
        user = printable(name)
        return self.sessions.open(f"{user} (token)" if user else BEARER_USER)

    def action_token(self, caller: Caller) -> str:
        """The token the page served to `caller` acts with: theirs alone, and a session's only while it lasts."""
        return hmac.new(self._secret, caller.key.encode(), hashlib.sha256).hexdigest()

    def _bearer(self, authorization: str) -> Caller | Unknown:
        scheme, _, offered = authorization.partition(" ")
        token = self.policy.token
        if scheme.lower() != "bearer" or token is None:
            return Unknown("the Authorization header is not a bearer token this dashboard accepts", self.login_form)
        if not hmac.compare_digest(offered.strip().encode(), token.encode()):
            return Unknown("the bearer token is not this dashboard's", self.login_form)
        return Caller(BEARER_USER, "bearer", "bearer")


def printable(name: str) -> str:
    """`name` as a log line may carry it: printable characters, single spaces, at most `MAX_USER_CHARS`."""
    return " ".join("".join(c for c in name if c.isprintable()).split())[:MAX_USER_CHARS]


def session_of(cookie_header: str | None) -> str | None:
    """The session id a `Cookie` header carries, if any."""
    if not cookie_header:
        return None
    cookies: SimpleCookie = SimpleCookie()
    try:
        cookies.load(cookie_header)
    except CookieError:
        return None
    morsel = cookies.get(SESSION_COOKIE)
    return morsel.value if morsel is not None and morsel.value else None


def session_cookie(session: str, lifetime_s: float, secure: bool) -> str:
    """The `Set-Cookie` value of a new session: script cannot read it, and no other site's request carries it."""
    attributes = f"{SESSION_COOKIE}={session}; Path=/; Max-Age={int(lifetime_s)}; HttpOnly; SameSite=Strict"
    return f"{attributes}; Secure" if secure else attributes


def ended_session_cookie(secure: bool) -> str:
    return session_cookie("", 0, secure)


def is_local(peer: str, headers: Headers) -> bool:
    """Whether a request comes from this machine itself: a loopback peer that relays nobody."""
    if any(headers.get(name) for name in FORWARDING_HEADERS):
        return False
    try:
        address = ipaddress.ip_address(peer.split("%", 1)[0])
    except ValueError:
        return False
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped.is_loopback
    return address.is_loopback
