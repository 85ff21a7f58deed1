"""The one place that decides what counts as a text (shared by every stage)."""

from __future__ import annotations

from ..errors import InputTypeError, InputValueError


def ensure_text(text: object) -> str:
    """Return ``text`` as ``str``: UTF-8 bytes are decoded, anything else that is not a str is refused.

    ``None`` and numbers raise :class:`InputTypeError` (a programming error on the caller's side);
    bytes that are not valid UTF-8 raise :class:`InputValueError`.
    """
    if isinstance(text, str):
        return text
    if isinstance(text, (bytes, bytearray, memoryview)):
        try:
            return bytes(text).decode("utf-8")
        except UnicodeDecodeError as exc:
            raise InputValueError(
                f"complaint bytes are not valid UTF-8 (byte {exc.start}); decode them with the "
                "right encoding first"
            ) from None
    raise InputTypeError(f"a complaint text must be str, got {type(text).__name__}")
