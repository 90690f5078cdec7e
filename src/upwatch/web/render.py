"""HTML from Jinja2 templates, escaped everywhere: a monitor named ``<script>`` shows as
text."""

from __future__ import annotations

from typing import Any

import jinja2

from upwatch.domain import rfc3339
from upwatch.web.assets import url

ENV = jinja2.Environment(
    loader=jinja2.PackageLoader("upwatch.web", "templates"),
    autoescape=True,  # every template, whatever its name
    undefined=jinja2.StrictUndefined,  # a missing value is a bug, not an empty string
    trim_blocks=True,
    lstrip_blocks=True,
)
ENV.filters["rfc3339"] = rfc3339
ENV.globals["static"] = url


def render(template: str, **context: Any) -> str:
    return ENV.get_template(template).render(**context)
