"""E-mail addresses: their stored form (NFKC, lower-case, no mixed scripts in a part) and their
look-alike skeleton (Unicode TR39), so that two addresses that look the same cannot both sign up."""

from __future__ import annotations

import unicodedata

from dpg.identity.confusables import PROTOTYPES
from dpg.identity.errors import AuthError

EMAIL_MAX = 254
_SCRIPTS = ("LATIN", "GREEK", "CYRILLIC")  # the scripts whose letters look alike


def normalize_email(email: str) -> str:
    """The stored form of an email address: NFKC (full-width and other compatibility forms become
    plain letters), trimmed, lower-case. INVALID_EMAIL if it is not shaped like one (at most 254
    characters, one '@', a dot inside the domain, nothing blank or invisible), or if its local
    part or a domain label mixes Latin, Greek and Cyrillic letters ('alice' with a Cyrillic
    U+0430 for its 'a' is a look-alike, never a real name)."""
    e = unicodedata.normalize("NFKC", email).strip().lower()
    local, _, domain = e.partition("@")
    labels = domain.split(".")
    if (
        len(e) > EMAIL_MAX
        or e.count("@") != 1
        or not local
        or len(labels) < 2
        or not all(labels)
        or any(c.isspace() or not c.isprintable() for c in e)
    ):
        raise AuthError("INVALID_EMAIL", "not a valid email address", 400)
    if any(len(_scripts(part)) > 1 for part in (local, *labels)):
        raise AuthError("INVALID_EMAIL", "an address may not mix Latin, Greek and Cyrillic letters in one part", 400)
    return e


def _scripts(text: str) -> set[str]:
    """Which of Latin, Greek and Cyrillic the letters of ``text`` are written in."""
    found = set()
    for c in text:
        if c.isalpha():
            script = "LATIN" if c < "\x80" else unicodedata.name(c, "").partition(" ")[0]
            if script in _SCRIPTS:
                found.add(script)
    return found


def email_skeleton(address: str) -> str:
    """What an address looks like (Unicode TR39's skeleton, for Latin, Greek and Cyrillic): case
    folded and decomposed (NFD), each non-ASCII letter replaced by its confusable prototype
    (Cyrillic U+0430 and Greek U+03B1 by 'a'), decomposed again. Addresses with one skeleton
    look alike; an all-ASCII address is its own skeleton (after case folding)."""
    text = unicodedata.normalize("NFD", address.casefold())
    return unicodedata.normalize("NFD", "".join(c if c < "\x80" else PROTOTYPES.get(c, c) for c in text))
