"""Phone numbers to E.164, the one reader both integrations use (RV3's Peruvian patients, MiaSalud's Mexican leads)."""

from __future__ import annotations

from typing import NamedTuple

MEXICO = 52


class Phone(NamedTuple):
    """What a typed number reads as: E.164 when it parses (else the digits as typed), and whether it is valid."""

    number: str
    valid: bool


def read_phone(raw: str, default_region: str) -> Phone | None:
    """`raw` as E.164, a number without country code taking `default_region`; None when it holds no digits.

    WhatsApp still sends Mexican mobiles in the form retired in 2019, `+52 1` and ten digits: the `1` is dropped
    (`+5215512345678` → `+525512345678`). A number that does not parse, or parses to no valid number, comes back
    with `valid` False, cleaned of everything but digits and a leading `+`, so it is kept and never passed on as
    valid."""
    import phonenumbers

    text = raw.strip()
    if not any(ch.isascii() and ch.isdigit() for ch in text):
        return None
    try:
        number = phonenumbers.parse(text, default_region)
    except phonenumbers.NumberParseException:
        return Phone(_digits(text), False)
    national = str(number.national_number)
    if number.country_code == MEXICO and len(national) == 11 and national.startswith("1"):
        number = phonenumbers.parse(f"+{MEXICO}{national[1:]}", None)
    formatted = phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)
    return Phone(formatted, phonenumbers.is_valid_number(number))


def _digits(text: str) -> str:
    kept = "".join(ch for ch in text if ch.isascii() and ch.isdigit())
    return ("+" if text.startswith("+") else "") + kept
