"""An account's exit address: where the home Vault pays the account's funds if the exchange stops
serving withdrawals (the escape hatch of docs/proof-of-reserves.md, "Version 2").

The address proves it is the user's by signing the EIP-712 message
``ExitAddress(uint64 account,address exitAddress,uint64 nonce)`` in the domain ("DPG Exit", "1",
the home chain's id, the home Vault); ``nonce`` is the account's count of registrations before it,
so a registration once replaced cannot be replayed.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from eth_account import Account
from eth_account.messages import SignableMessage, encode_typed_data
from eth_account.signers.local import LocalAccount

from dpg.chain.signer import EIP712_DOMAIN, SignatureError, checksum

DOMAIN_NAME = "DPG Exit"
DOMAIN_VERSION = "1"
EXIT_TYPES = {
    "ExitAddress": [
        {"name": "account", "type": "uint64"},
        {"name": "exitAddress", "type": "address"},
        {"name": "nonce", "type": "uint64"},
    ]
}
ADDRESS = re.compile(r"0x[0-9a-fA-F]{40}")
SIGNATURE = re.compile(r"0x[0-9a-fA-F]{130}")
ZERO = "0x" + "00" * 20


def typed_data(account: int, address: str, nonce: int, chain_id: int, vault: str) -> dict[str, Any]:
    """The EIP-712 typed data of a registration, JSON-ready: what ``eth_signTypedData_v4`` takes."""
    return {
        "types": {"EIP712Domain": EIP712_DOMAIN, **EXIT_TYPES},
        "primaryType": "ExitAddress",
        "domain": {"name": DOMAIN_NAME, "version": DOMAIN_VERSION, "chainId": chain_id,
                   "verifyingContract": checksum(vault)},
        "message": {"account": account, "exitAddress": checksum(address), "nonce": nonce},
    }


@dataclass(frozen=True, slots=True)
class ExitAddress:
    """One registration: ``account`` names ``address`` (its ``nonce``-th), for the Vault ``vault``
    on chain ``chain_id``."""

    account: int
    address: str  # lower-case 0x address
    nonce: int
    chain_id: int
    vault: str

    def __post_init__(self) -> None:
        if not 0 < self.account < 1 << 64 or not 0 <= self.nonce < 1 << 64:
            raise ValueError("the account and the nonce are uint64s (the account positive)")
        if not ADDRESS.fullmatch(self.address) or self.address.lower() == ZERO:
            raise ValueError("an exit address is 0x and 40 hex digits, not the zero address")

    def typed_data(self) -> dict[str, Any]:
        return typed_data(self.account, self.address, self.nonce, self.chain_id, self.vault)

    def signable(self) -> SignableMessage:
        return encode_typed_data(full_message=self.typed_data())


def sign(reg: ExitAddress, key: LocalAccount) -> str:
    """The exit address's signature of its registration (``key`` is the exit address's): 0x + 130
    hex (r, s, v with v = 27 or 28)."""
    if key.address.lower() != reg.address.lower():
        raise SignatureError(f"the key is {key.address.lower()}'s, not the exit address {reg.address.lower()}'s")
    return "0x" + bytes(key.sign_message(reg.signable()).signature).hex()


def check(reg: ExitAddress, signature: str) -> None:
    """Raises SignatureError unless ``signature`` is the exit address's own of this registration."""
    if not SIGNATURE.fullmatch(signature):
        raise SignatureError("a signature is 0x and 130 hex digits (r, s, v)")
    try:
        signer = str(Account.recover_message(reg.signable(), signature=bytes.fromhex(signature[2:]))).lower()
    except Exception as e:  # eth-account raises several kinds for a bad signature
        raise SignatureError(f"not a valid signature: {e}") from None
    if signer != reg.address.lower():
        raise SignatureError(f"the signature is by {signer}, not by the exit address {reg.address.lower()}")
