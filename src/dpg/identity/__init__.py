"""Identity: users, passwords, sessions, TOTP, mailed links, API keys and signed requests, and the
sealing of stored secrets. A library: the HTTP routes that call it live in ``dpg.api``. Every
rejection is an ``AuthError`` with a stable code and an HTTP status. ``Accounts`` composes them."""

from dpg.identity.accounts import Accounts
from dpg.identity.emails import email_skeleton, normalize_email
from dpg.identity.errors import AuthError
from dpg.identity.replay import MemoryReplayGuard, RedisReplayGuard, ReplayGuard
from dpg.identity.sealing import SecretBox

__all__ = ["Accounts", "AuthError", "MemoryReplayGuard", "RedisReplayGuard", "ReplayGuard", "SecretBox",
           "email_skeleton", "normalize_email"]
