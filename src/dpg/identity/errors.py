"""The identity errors: every rejection is an ``AuthError`` with a stable code, a reason for people
and an HTTP status."""

from __future__ import annotations


class AuthError(Exception):
    """A rejected request: ``code`` for programs, ``reason`` for people, ``status`` for HTTP."""

    def __init__(self, code: str, reason: str, status: int) -> None:
        super().__init__(f"{code}: {reason}")
        self.code = code
        self.reason = reason
        self.status = status


def invalid_credentials() -> AuthError:
    return AuthError("INVALID_CREDENTIALS", "wrong email or password", 401)


def user_unknown() -> AuthError:
    return AuthError("USER_UNKNOWN", "no such user", 404)


def totp_reused() -> AuthError:
    return AuthError("TOTP_REUSED", "this code was used already; wait for the next one", 401)

