"""Image content parts: what an `image` part's value may be, and how it reaches the model.

An image part's value (a case variable, or the text a template renders) is one of:

- an `http(s)://` URL: passed through as the part's `image_url` (the provider fetches it);
- a `data:image/...;base64,` URL: checked like a file (type and size), then passed through;
- a repository-relative file path: read through the prompt's snapshot (the working tree or a
  git ref: one code path, so a prompt at a ref renders identically) and sent as a `data:` URL.

Files are checked by their bytes, never their name: PNG, JPEG, GIF or WebP by magic bytes,
at most `MAX_IMAGE_BYTES`. Every failure is an `ImageError` whose message says what to fix.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import re
from collections.abc import Callable
from dataclasses import dataclass
from urllib.parse import urlsplit

from promptyard.errors import PromptyardError
from promptyard.pathsafety import safe_relpath

MAX_IMAGE_BYTES = 5 * 1024 * 1024  # per image; the smallest cap of the major vision APIs

# (path, limit) -> at most limit + 1 bytes, or None when missing; raises for unsafe paths
ReadFile = Callable[[str, int], bytes | None]

_DATA_URL = re.compile(r"^data:([a-z0-9.+/-]+);base64,(.*)$", re.IGNORECASE | re.DOTALL)


class ImageError(ValueError):
    """An image value that cannot be sent: why, and what to do instead."""


@dataclass(frozen=True)
class ResolvedImage:
    """An image ready for the request: its URL, and for bytes we hold, their type and hash."""

    url: str
    media_type: str | None = None  # None for an http(s) URL (the provider fetches it)
    sha256: str | None = None
    path: str | None = None  # the repository file it came from

    def part(self, detail: str | None = None) -> dict[str, object]:
        """The OpenAI-compatible content part."""
        image_url: dict[str, str] = {"url": self.url}
        if detail is not None:
            image_url["detail"] = detail
        return {"type": "image_url", "image_url": image_url}


def sniff_image_type(data: bytes) -> str | None:
    """The MIME type the bytes are (by magic number), or None when not PNG/JPEG/GIF/WebP."""
    if data.startswith(b"\x89PNG\r\n\x1a\n"):
        return "image/png"
    if data.startswith(b"\xff\xd8\xff"):
        return "image/jpeg"
    if data[:6] in (b"GIF87a", b"GIF89a"):
        return "image/gif"
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "image/webp"
    return None


def _over_cap(where: str) -> ImageError:
    return ImageError(
        f"{where} is over the {MAX_IMAGE_BYTES // (1024 * 1024)} MiB image cap; "
        "resize or compress it"
    )


def _checked_bytes(data: bytes, where: str) -> str:
    if len(data) > MAX_IMAGE_BYTES:
        raise _over_cap(where)
    media_type = sniff_image_type(data)
    if media_type is None:
        raise ImageError(
            f"{where} is not a PNG, JPEG, GIF or WebP image (checked by its bytes, "
            "not its name); convert it to one of those"
        )
    return media_type


def _data_url(media_type: str, data: bytes) -> str:
    return f"data:{media_type};base64,{base64.b64encode(data).decode('ascii')}"


def resolve_image(value: object, read: ReadFile, holds: str = "the repository") -> ResolvedImage:
    """Check an image value and turn it into what the request carries; raise ImageError.

    `read` reads a repository file (a snapshot's `read`); `holds` says what it reads from."""
    if not isinstance(value, str) or not value.strip():
        raise ImageError(
            f"an image needs a URL or a repository file path, got {value!r}; "
            "e.g. images/receipt.png or https://example.com/receipt.png"
        )
    value = value.strip()
    scheme = urlsplit(value).scheme.lower() if ":" in value[:12] else ""
    if scheme in ("http", "https"):
        if not urlsplit(value).netloc:
            raise ImageError(f"image URL {value!r} has no host")
        return ResolvedImage(url=value)
    if scheme == "data":
        return _resolve_data_url(value)
    if scheme:
        raise ImageError(
            f"image {value[:60]!r}: {scheme}: URLs are not supported; use an http(s) URL, "
            "a data:image/...;base64 URL or a repository-relative file path"
        )
    return _resolve_file(value, read, holds)


def _resolve_data_url(value: str) -> ResolvedImage:
    match = _DATA_URL.match(value)
    if match is None:
        raise ImageError("a data: image URL must be data:image/<type>;base64,<data>")
    if len(match.group(2)) > (MAX_IMAGE_BYTES + 2) // 3 * 4 + 4:  # refused before decoding
        raise _over_cap("the data: image")
    try:
        data = base64.b64decode(match.group(2), validate=True)
    except (binascii.Error, ValueError):
        raise ImageError("the data: image URL's base64 payload does not decode") from None
    media_type = _checked_bytes(data, "the data: image")
    if match.group(1).lower() != media_type:
        raise ImageError(
            f"the data: image says {match.group(1)} but its bytes are {media_type}; "
            "fix the MIME type"
        )
    return ResolvedImage(url=value, media_type=media_type, sha256=hashlib.sha256(data).hexdigest())


def _resolve_file(value: str, read: ReadFile, holds: str) -> ResolvedImage:
    path = safe_relpath(value)
    if path is None:
        raise ImageError(
            f"image path {value!r} leaves the repository or is not a plain relative path "
            "(no '..', no leading '/'); use a path like images/receipt.png"
        )
    try:
        data = read(path, MAX_IMAGE_BYTES)
    except (OSError, PromptyardError) as exc:  # a symlink out of the repository, unreadable
        reason = getattr(exc, "message", None) or str(exc)
        raise ImageError(
            f"image {reason if reason.startswith(path) else f'{path}: {reason}'}"
        ) from None
    if data is None:
        raise ImageError(f"image file {path} does not exist in {holds}")
    media_type = _checked_bytes(data, f"image {path}")
    return ResolvedImage(
        url=_data_url(media_type, data),
        media_type=media_type,
        sha256=hashlib.sha256(data).hexdigest(),
        path=path,
    )
