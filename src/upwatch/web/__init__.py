"""The web: server-rendered HTML under ``/`` beside the API (SPEC §10). So far, the
public status pages; the dashboard builds on the same parts.

- assets.py   static files under content-hashed names, cached for a year
- headers.py  the security headers of every response (CSP without inline scripts)
- render.py   Jinja2, autoescaped
- cache.py    a short-lived cache that renders each page once per expiry, however many ask
- status.py   /status/<slug> (HTML, no JavaScript) and /status/<slug>.json
"""

from __future__ import annotations

from fastapi import FastAPI

from upwatch.web import assets, status


def install(app: FastAPI) -> None:
    """Add the web's routes to the API's app (the API's own routes are untouched)."""
    app.include_router(assets.router)
    app.include_router(status.router)
    status.install_cache(app)
