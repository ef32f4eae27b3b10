"""SMS: E.164 numbers (phonenumbers) and how many parts a text costs."""

from __future__ import annotations

import phonenumbers

GSM7 = set(
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?¡ABCDEFGHIJKLMNOPQRSTUVWXYZ"
    "ÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà"
)
GSM7_EXTENDED = set("^{}\\[~]|€\f")


class InvalidNumber(ValueError):
    pass


def e164(number: str, country: str | None) -> str:
    """The number in E.164, read in the customer's country when it has no +prefix."""
    try:
        parsed = phonenumbers.parse(number, (country or "").upper() or None)
    except phonenumbers.NumberParseException as e:
        raise InvalidNumber(f"not a phone number ({e.error_type})") from e
    if not phonenumbers.is_valid_number(parsed):
        raise InvalidNumber("not a valid phone number for its country")
    return phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164)


def parts(text: str) -> int:
    """Message parts: GSM-7 160/153 characters, otherwise UCS-2 70/67 (in UTF-16 units)."""
    if all(c in GSM7 or c in GSM7_EXTENDED for c in text):
        units = sum(2 if c in GSM7_EXTENDED else 1 for c in text)
        single, multi = 160, 153
    else:
        units = len(text.encode("utf-16-le")) // 2
        single, multi = 70, 67
    return 1 if units <= single else -(-units // multi)
