"""Static files, served under names that carry a hash of their content
(``upwatch.3f2a9c1e.css``): a browser may keep them for a year, and a new release is a
new name. Read once at import: they ship inside the package."""

from __future__ import annotations

import gzip
import hashlib
import mimetypes
from dataclasses import dataclass
from importlib import resources

from fastapi import APIRouter, Request
from starlette.responses import Response

from upwatch.web.headers import SECURITY_HEADERS

CACHE_FOREVER = "public, max-age=31536000, immutable"


@dataclass(frozen=True, slots=True)
class Asset:
    body: bytes
    media_type: str
    hashed_name: str
    gzipped: bytes | None  # text assets, compressed once at start


def _load() -> dict[str, Asset]:
    found: dict[str, Asset] = {}
    for entry in resources.files("upwatch.web").joinpath("static").iterdir():
        if not entry.is_file() or entry.name.startswith("."):
            continue
        body = entry.read_bytes()
        stem, _, suffix = entry.name.rpartition(".")
        digest = hashlib.sha256(body).hexdigest()[:10]
        media = mimetypes.guess_type(entry.name)[0] or "application/octet-stream"
        if media.startswith("text/") or media == "application/javascript":
            media += "; charset=utf-8"
        textual = media.startswith("text/") or media.startswith("application/javascript")
        gzipped = gzip.compress(body, compresslevel=9, mtime=0) if textual else None
        found[entry.name] = Asset(body, media, f"{stem}.{digest}.{suffix}", gzipped)
    return found


ASSETS = _load()
_BY_HASHED_NAME = {a.hashed_name: a for a in ASSETS.values()}


def url(name: str) -> str:
    """The URL of a static file, by its plain name (templates call this)."""
    return f"/static/{ASSETS[name].hashed_name}"


router = APIRouter(include_in_schema=False)


@router.get("/static/{name}")
async def static(name: str, request: Request) -> Response:
    asset = _BY_HASHED_NAME.get(name)
    if asset is None:
        return Response("Not found", status_code=404, media_type="text/plain; charset=utf-8")
    headers = {"Cache-Control": CACHE_FOREVER, "Vary": "Accept-Encoding", **SECURITY_HEADERS}
    if asset.gzipped is not None and "gzip" in request.headers.get("accept-encoding", ""):
        headers["Content-Encoding"] = "gzip"
        return Response(asset.gzipped, media_type=asset.media_type, headers=headers)
    return Response(asset.body, media_type=asset.media_type, headers=headers)
