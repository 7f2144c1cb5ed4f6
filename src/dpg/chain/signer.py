"""Signers of the vault's withdrawals: the EIP-712 typed data they sign, their keys, and the
automated policy signers.

The Vault pays a withdrawal only with 3 signatures of its 5 signers over
``Withdrawal(bytes32 id,uint64 account,address token,address to,uint256 amount,uint256 deadline)``
in the domain ("DPG Vault", "1", chain id, vault address); a forced withdrawal whose account has
nothing available is answered with 3 signatures over ``ForcedZero(bytes32 requestId,uint256 deadline)``
in the same domain (``ZeroAnswer``). Two signers are automated: each signs by
policy (an amount limit per withdrawal, a velocity limit per account, address checks) and declines
otherwise; the three others are people who review and sign with ``dpg signer sign`` and their own
keys. A usual withdrawal thus needs the two policy signatures and one human's; one the policy
declines needs three humans.

Keys are 32-byte hex strings, given as ``0x…`` text or in a file (mode 0600). The embedded dev
chain's signers are anvil's well-known test accounts 1-5 (policy: 1, 2; human: 3, 4, 5) and its
broadcaster is account 0: never use them for anything of value.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from eth_account import Account
from eth_account.messages import SignableMessage, encode_typed_data
from eth_account.signers.local import LocalAccount
from eth_utils.crypto import keccak

DOMAIN_NAME = "DPG Vault"
DOMAIN_VERSION = "1"
EIP712_DOMAIN = [  # the fields of the Vault's EIP-712 domains
    {"name": "name", "type": "string"},
    {"name": "version", "type": "string"},
    {"name": "chainId", "type": "uint256"},
    {"name": "verifyingContract", "type": "address"},
]
WITHDRAWAL_TYPES = {
    "Withdrawal": [
        {"name": "id", "type": "bytes32"},
        {"name": "account", "type": "uint64"},
        {"name": "token", "type": "address"},
        {"name": "to", "type": "address"},
        {"name": "amount", "type": "uint256"},
        {"name": "deadline", "type": "uint256"},
    ]
}
FORCED_ZERO_TYPES = {
    "ForcedZero": [
        {"name": "requestId", "type": "bytes32"},
        {"name": "deadline", "type": "uint256"},
    ]
}
DEV_MNEMONIC = "test test test test test test test test test test test junk"  # anvil's public test mnemonic

_HEX_KEY = re.compile(r"0x[0-9a-fA-F]{64}")


class SignatureError(ValueError):
    """A signature that is malformed or not by whom it must be."""


class Signable(Protocol):
    """What the vault's signers sign: a withdrawal's terms or a forced withdrawal's zero answer."""

    def signable(self) -> SignableMessage: ...


@dataclass(frozen=True, slots=True)
class Terms:
    """What the signers sign: one withdrawal from one vault on one chain."""

    id: str  # 0x + 64 hex
    account: int
    token: str  # 0x address; the zero address for the native coin
    to: str
    amount: int
    deadline: int  # unix seconds
    chain_id: int
    vault: str

    def typed_data(self) -> dict[str, Any]:
        return {
            "types": {"EIP712Domain": EIP712_DOMAIN, **WITHDRAWAL_TYPES},
            "primaryType": "Withdrawal",
            "domain": {"name": DOMAIN_NAME, "version": DOMAIN_VERSION, "chainId": self.chain_id,
                       "verifyingContract": checksum(self.vault)},
            "message": {"id": bytes.fromhex(self.id[2:]), "account": self.account, "token": checksum(self.token),
                        "to": checksum(self.to), "amount": self.amount, "deadline": self.deadline},
        }

    def signable(self) -> SignableMessage:
        return encode_typed_data(full_message=self.typed_data())

    def digest(self) -> bytes:
        """The EIP-712 digest the vault recovers signers from (its ``withdrawalDigest``)."""
        return digest(self)

    def as_tuple(self) -> tuple[bytes, int, str, str, int, int]:
        """The vault's ``Withdrawal`` struct, for ABI encoding."""
        return (bytes.fromhex(self.id[2:]), self.account, checksum(self.token), checksum(self.to), self.amount,
                self.deadline)


@dataclass(frozen=True, slots=True)
class ZeroAnswer:
    """What the signers sign to answer a forced withdrawal request of an account with nothing
    available: the vault's ``answerForcedZero(requestId, deadline, signatures)`` serves it."""

    request_id: str  # 0x + 64 hex
    deadline: int  # unix seconds
    chain_id: int
    vault: str

    def typed_data(self) -> dict[str, Any]:
        return {
            "types": {"EIP712Domain": EIP712_DOMAIN, **FORCED_ZERO_TYPES},
            "primaryType": "ForcedZero",
            "domain": {"name": DOMAIN_NAME, "version": DOMAIN_VERSION, "chainId": self.chain_id,
                       "verifyingContract": checksum(self.vault)},
            "message": {"requestId": bytes.fromhex(self.request_id[2:]), "deadline": self.deadline},
        }

    def signable(self) -> SignableMessage:
        return encode_typed_data(full_message=self.typed_data())

    def digest(self) -> bytes:
        """The EIP-712 digest the vault recovers signers from (its ``forcedZeroDigest``)."""
        return digest(self)


def digest(terms: Signable) -> bytes:
    """The EIP-712 digest of what a signer signs."""
    m = terms.signable()
    return keccak(b"\x19" + m.version + m.header + m.body)


def checksum(address: str) -> str:
    """The EIP-55 spelling of ``address``."""
    from eth_utils.address import to_checksum_address

    return str(to_checksum_address(address))


def sign(terms: Signable, key: LocalAccount) -> str:
    """``key``'s signature of ``terms``: 0x + 130 hex (r, s, v with v = 27 or 28)."""
    signed = key.sign_message(terms.signable())
    return "0x" + bytes(signed.signature).hex()


def recover(terms: Signable, signature: str) -> str:
    """The lower-case address that signed ``terms`` with ``signature``."""
    if not re.fullmatch(r"0x[0-9a-fA-F]{130}", signature):
        raise SignatureError("a signature is 0x and 130 hex digits (r, s, v)")
    try:
        return str(Account.recover_message(terms.signable(), signature=bytes.fromhex(signature[2:]))).lower()
    except Exception as e:  # eth-account raises several kinds for a bad signature
        raise SignatureError(f"not a valid signature: {e}") from None


def valid(terms: Signable, stored: Mapping[str, str], signers: set[str]) -> dict[str, str]:
    """The ``stored`` signatures (signer -> signature) of ``terms`` that recover to their signer, one of
    ``signers`` (the vault's current ones)."""
    out: dict[str, str] = {}
    for signer, sig in stored.items():
        try:
            who = recover(terms, sig)
        except SignatureError:
            continue
        if who == signer and who in signers:
            out[who] = sig
    return out


def ordered(signatures: Mapping[str, str]) -> list[str]:
    """Signatures as the vault takes them: sorted by signer address, ascending."""
    return [signatures[s] for s in sorted(signatures, key=lambda a: int(a, 16))]


# ---------------------------------------------------------------------- keys


def key_from_text(text: str, where: str) -> LocalAccount:
    text = text.strip()
    if not _HEX_KEY.fullmatch(text):
        raise ValueError(f"{where}: a key is 0x and 64 hex digits")
    account: LocalAccount = Account.from_key(text)
    return account


def load_key(value: str, where: str) -> LocalAccount:
    """A key given as ``0x…`` or as the path of a file holding it."""
    if value.startswith("0x"):
        return key_from_text(value, where)
    try:
        return key_from_text(Path(value).expanduser().read_text(), f"{where} ({value})")
    except OSError as e:
        raise ValueError(f"{where}: cannot read {value}: {e.strerror}") from None


def dev_key(index: int) -> LocalAccount:
    """anvil's test account ``index`` (dev chains only)."""
    Account.enable_unaudited_hdwallet_features()
    account: LocalAccount = Account.from_mnemonic(DEV_MNEMONIC, account_path=f"m/44'/60'/0'/0/{index}")
    return account


def write_key(path: Path, key: LocalAccount) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write("0x" + bytes(key.key).hex() + "\n")


@dataclass(frozen=True, slots=True)
class Keys:
    """The keys the exchange itself holds for a chain: two policy signers and the broadcaster (which
    only pays gas: it can send a signed withdrawal, never make one)."""

    policy: tuple[LocalAccount, LocalAccount]
    broadcaster: LocalAccount


def load_keys(env: Mapping[str, str], embedded: bool) -> Keys:
    """``DPG_POLICY_SIGNER_KEYS`` (two keys or key files, comma-separated) and
    ``DPG_BROADCASTER_KEY``; an embedded dev chain uses anvil's accounts 1, 2 and 0 when unset."""
    policy_text = env.get("DPG_POLICY_SIGNER_KEYS", "")
    broadcaster_text = env.get("DPG_BROADCASTER_KEY", "")
    if policy_text:
        parts = [p.strip() for p in policy_text.split(",") if p.strip()]
        if len(parts) != 2:
            raise ValueError("DPG_POLICY_SIGNER_KEYS: two keys (or key files), comma-separated")
        policy = (load_key(parts[0], "DPG_POLICY_SIGNER_KEYS"), load_key(parts[1], "DPG_POLICY_SIGNER_KEYS"))
    elif embedded:
        policy = (dev_key(1), dev_key(2))
    else:
        raise ValueError("a chain reached by URL needs DPG_POLICY_SIGNER_KEYS for its withdrawals")
    if broadcaster_text:
        broadcaster = load_key(broadcaster_text, "DPG_BROADCASTER_KEY")
    elif embedded:
        broadcaster = dev_key(0)
    else:
        raise ValueError("a chain reached by URL needs DPG_BROADCASTER_KEY for its withdrawals")
    if policy[0].address == policy[1].address:
        raise ValueError("DPG_POLICY_SIGNER_KEYS: the two policy signers must be different keys")
    return Keys(policy, broadcaster)
