"""Account REST: sign-up, log-in and -out, 2FA, e-mail verification, password reset, API keys.

(No ``from __future__ import annotations``: FastAPI reads the annotations as objects.)"""

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Request
from pydantic import BaseModel, Field

from dpg.api.deps import Rt, Session, client_ip

router = APIRouter(tags=["account"])


class SignupRequest(BaseModel):
    email: str = Field(max_length=254)
    password: str = Field(max_length=128)


class LoginRequest(BaseModel):
    email: str = Field(max_length=254)
    password: str = Field(max_length=128)
    totp: str | None = Field(default=None, max_length=16)


class TotpRequest(BaseModel):
    code: str = Field(max_length=16)


class TokenRequest(BaseModel):
    token: str = Field(max_length=64, description="the token of the mailed link (its ?token=...)")


class ForgotRequest(BaseModel):
    email: str = Field(max_length=254)


class ResetRequest(BaseModel):
    token: str = Field(max_length=64, description="the token of the mailed link (its ?token=...)")
    password: str = Field(max_length=128, description="the new password, 10 to 128 characters")


class ApiKeyRequest(BaseModel):
    name: str = Field(min_length=1, max_length=64)
    permissions: list[Literal["read", "trade", "withdraw"]] = Field(min_length=1, max_length=3)
    ip_allow: list[str] = Field(default_factory=list, max_length=32)
    totp: str | None = Field(default=None, max_length=16)


@router.post("/api/v1/auth/signup", status_code=201)
async def signup(rt: Rt, req: SignupRequest) -> dict[str, int]:
    user = await rt.accounts.sign_up(req.email, req.password)
    await rt.open_account(user)  # if the engine cannot take it now: at the next login or start
    return {"user_id": user}


@router.post("/api/v1/auth/login")
async def login(rt: Rt, req: LoginRequest, request: Request) -> dict[str, Any]:
    token, expires = await rt.accounts.login(req.email, req.password, req.totp, client_ip(request))
    user = await rt.accounts.session_user(token)
    if not rt.views.has_account(user):  # its sign-up could not open it
        await rt.open_account(user)
    return {"token": token, "expires_at": int(expires * 1000), "user_id": user}


@router.post("/api/v1/auth/logout")
async def logout(rt: Rt, request: Request, _: Session) -> dict[str, bool]:
    await rt.accounts.logout(request.headers["authorization"][7:].strip())
    return {"ok": True}


@router.post("/api/v1/auth/2fa/setup")
async def totp_setup(rt: Rt, user: Session) -> dict[str, str]:
    secret, uri = await rt.accounts.totp_begin(user)
    return {"secret": secret, "otpauth_uri": uri}


@router.post("/api/v1/auth/2fa/enable")
async def totp_enable(rt: Rt, req: TotpRequest, user: Session) -> dict[str, list[str]]:
    return {"recovery_codes": await rt.accounts.totp_enable(user, req.code)}


@router.get("/api/v1/auth/2fa")
async def totp_status(rt: Rt, user: Session) -> dict[str, Any]:
    """Whether 2FA is on (then withdrawals and new allow-listed addresses need a code) and how
    many unused recovery codes are left."""
    return await rt.accounts.totp_status(user)


@router.post("/api/v1/auth/2fa/disable")
async def totp_disable(rt: Rt, req: TotpRequest, user: Session) -> dict[str, bool]:
    """Turn 2FA off with a current code from the app (not a recovery code); each code works once."""
    await rt.accounts.totp_disable(user, req.code)
    return {"enabled": False}


@router.post("/api/v1/auth/2fa/recovery-codes")
async def totp_recovery_codes(rt: Rt, req: TotpRequest, user: Session) -> dict[str, list[str]]:
    """New recovery codes, shown once, with a current code from the app; the old ones stop working."""
    return {"recovery_codes": await rt.accounts.new_recovery_codes(user, req.code)}


@router.get("/api/v1/auth/email")
async def email_status(rt: Rt, user: Session) -> dict[str, Any]:
    """The account's address and whether it is verified (until then: no withdrawals, no new
    withdrawal addresses)."""
    return await rt.accounts.email_status(user)


@router.post("/api/v1/auth/verify-email")
async def verify_email(rt: Rt, req: TokenRequest) -> dict[str, Any]:
    """Follow the link mailed at sign-up (valid 24 h, once): the address is verified."""
    return {"ok": True, "user_id": await rt.accounts.verify_email(req.token)}


@router.post("/api/v1/auth/verify-email/resend")
async def resend_verification(rt: Rt, user: Session) -> dict[str, bool]:
    await rt.accounts.resend_verification(user)
    return {"ok": True}


@router.post("/api/v1/auth/password/forgot", status_code=202)
async def forgot_password(rt: Rt, req: ForgotRequest, request: Request) -> dict[str, Any]:
    """Mail a link to set a new password (valid 1 h, once) if an account has this address; the
    answer is the same either way."""
    await rt.accounts.request_password_reset(req.email, client_ip(request))
    return {"ok": True, "message": "If an account has this address, a link to reset its password was mailed to it."}


@router.post("/api/v1/auth/password/reset")
async def reset_password(rt: Rt, req: ResetRequest) -> dict[str, bool]:
    """Set a new password with the mailed link's token; every session of the account ends."""
    await rt.accounts.reset_password(req.token, req.password)
    return {"ok": True}


@router.post("/api/v1/api-keys", status_code=201)
async def create_key(rt: Rt, req: ApiKeyRequest, user: Session) -> dict[str, Any]:
    key, secret = await rt.accounts.create_api_key(user, req.name, set(req.permissions), req.ip_allow, req.totp)
    return {"key": key, "secret": secret, "permissions": sorted(set(req.permissions)), "ip_allow": req.ip_allow}


@router.get("/api/v1/api-keys")
async def list_keys(rt: Rt, user: Session) -> list[dict[str, Any]]:
    rows = await rt.accounts.list_api_keys(user)
    return [{k: (v.isoformat() if hasattr(v, "isoformat") else v) for k, v in r.items()} for r in rows]


@router.delete("/api/v1/api-keys/{key}")
async def revoke_key(rt: Rt, key: Annotated[str, Field(max_length=64)], user: Session) -> dict[str, bool]:
    await rt.accounts.revoke_api_key(user, key)
    return {"ok": True}
