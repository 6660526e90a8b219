"""Judge an attached file by its content, within the limits, before anything is sent to a model."""

from __future__ import annotations

import io
import warnings
from dataclasses import dataclass
from pathlib import Path

from PIL import Image

from smart_agent.config import Settings

TEXT_EXTENSIONS = (
    "txt", "md", "csv", "tsv", "json", "jsonl", "yaml", "yml", "toml", "xml", "html", "css", "log",
    "py", "js", "ts", "tsx", "jsx", "java", "c", "h", "cpp", "hpp", "cs", "go", "rs", "rb", "php",
    "sh", "sql", "kt", "swift", "r", "ini", "cfg",
)  # fmt: skip
IMAGE_EXTENSIONS = ("png", "jpg", "jpeg", "gif", "webp")
MAX_IMAGE_PIXELS = 40_000_000
"""An image with more pixels than this is refused before it is decoded (a decompression bomb)."""
MAX_IMAGE_SIDE = 2048
"""A longer image is scaled down to this many pixels on its longer side before it goes to a model."""
_MAGIC = (
    (b"\x89PNG\r\n\x1a\n", "image/png"),
    (b"\xff\xd8\xff", "image/jpeg"),
    (b"GIF87a", "image/gif"),
    (b"GIF89a", "image/gif"),
)


class AttachmentError(ValueError):
    """A file the app refuses; the message names the file and why, in words a user reads."""


@dataclass(frozen=True)
class Limits:
    """What may be attached: bytes per file, files per message, accepted name extensions."""

    max_bytes: int
    max_files: int
    extensions: tuple[str, ...]
    max_pixels: int = MAX_IMAGE_PIXELS

    @classmethod
    def from_settings(cls, settings: Settings) -> Limits:
        """The limits SMART_AGENT_ATTACHMENT_* set."""
        return cls(
            settings.attachment_max_mb * 1_000_000,  # as Chainlit's page counts a megabyte
            settings.attachment_max_files,
            settings.attachment_types,
        )

    def describe(self) -> str:
        """The limits in one line, for the page and the refusals."""
        return (
            f"up to {self.max_files} files of at most {self.max_bytes // 1_000_000} MB each; "
            f"accepted: {', '.join(self.extensions)}"
        )


@dataclass(frozen=True)
class Attachment:
    """A file that passed: its name, its type judged from its bytes, and its bytes."""

    name: str
    mime: str
    data: bytes

    @property
    def is_image(self) -> bool:
        """True for a decoded, bounded image."""
        return self.mime.startswith("image/")

    @property
    def text(self) -> str:
        """The text of a text file."""
        return self.data.decode("utf-8-sig")


def sniff(data: bytes) -> str:
    """The type the bytes are: an image's MIME type, text/plain for UTF-8 text, else ''."""
    for magic, mime in _MAGIC:
        if data.startswith(magic):
            return mime
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "image/webp"
    if b"\x00" in data:
        return ""
    try:
        data.decode("utf-8-sig")
    except UnicodeDecodeError:
        return ""
    return "text/plain"


def read_bounded(path: Path, limit: int) -> bytes:
    """The file's bytes; AttachmentError when it is larger than `limit`, checked before reading."""
    size = path.stat().st_size
    if size > limit:
        raise AttachmentError(f"it has {size:,} bytes, over the limit of {limit:,}")
    with path.open("rb") as file:
        data = file.read(limit + 1)
    if len(data) > limit:  # grew since the stat
        raise AttachmentError(f"it is over the limit of {limit:,} bytes")
    return data


def read_attachment(name: str, path: Path, limits: Limits) -> Attachment:
    """Read (bounded) and judge the file at `path` that the user sent as `name`."""
    return judge(name, read_bounded(path, limits.max_bytes), limits)


def judge(name: str, data: bytes, limits: Limits) -> Attachment:
    """The attachment if its name is accepted and its content is what the name says; else AttachmentError."""
    extension = name.rsplit(".", 1)[-1].lower() if "." in name else ""
    if extension not in limits.extensions:
        raise AttachmentError(f"files of type .{extension or '(none)'} are not accepted")
    if len(data) > limits.max_bytes:
        raise AttachmentError(f"it has {len(data):,} bytes, over the limit of {limits.max_bytes:,}")
    mime = sniff(data)
    if extension in IMAGE_EXTENSIONS:
        if not mime.startswith("image/"):
            raise AttachmentError("its content is not a PNG, JPEG, GIF or WebP image")
        return Attachment(name, "image/png", bounded_png(data, limits.max_pixels))
    if mime != "text/plain":
        raise AttachmentError("its content is not text (UTF-8)" if not mime else "its content is an image")
    return Attachment(name, mime, data)


def bounded_png(data: bytes, max_pixels: int) -> bytes:
    """The image decoded (after checking its size in pixels), scaled to MAX_IMAGE_SIDE, as a PNG."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            image = Image.open(io.BytesIO(data))
            width, height = image.size
            if width * height > max_pixels:
                raise AttachmentError(
                    f"the image is {width:,} x {height:,} pixels, over the limit of {max_pixels:,} pixels"
                )
            image.load()
            image.thumbnail((MAX_IMAGE_SIDE, MAX_IMAGE_SIDE))
            out = io.BytesIO()
            image.convert("RGBA" if image.mode in ("RGBA", "LA", "P") else "RGB").save(out, "PNG")
    except AttachmentError:
        raise
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):  # Pillow's own, larger bound
        raise AttachmentError(f"the image has more pixels than the limit of {max_pixels:,}") from None
    except (OSError, ValueError, SyntaxError):
        raise AttachmentError("the image cannot be read") from None
    return out.getvalue()
