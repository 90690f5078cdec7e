"""The documentation holds together without building it: every relative link in
README.md (the front door, read on GitHub) reaches a file, and every page in
mkdocs.yml's nav exists. `mkdocs build --strict` (in CI) checks the rest: links and
anchors between the pages."""

import re
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
README = ROOT / "README.md"
MKDOCS = ROOT / "mkdocs.yml"
DOCS = ROOT / "docs"

# [text](target) and [text](target "title"); images too. Code spans are removed first.
LINK = re.compile(r"\[[^\]]*\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)")
CODE = re.compile(r"```.*?```|`[^`\n]*`", re.DOTALL)
EXTERNAL = re.compile(r"^[a-z][a-z0-9+.-]*:", re.IGNORECASE)  # http:, https:, mailto:…


def relative_links(markdown: str) -> list[str]:
    """Targets of the links that point into the repository, without their #anchor."""
    targets = LINK.findall(CODE.sub("", markdown))
    return [t.split("#", 1)[0] for t in targets if not EXTERNAL.match(t) and t.split("#", 1)[0]]


class _Loader(yaml.SafeLoader):
    """mkdocs.yml may hold tags such as !!python/name:… (Material's emoji): read them as None."""


_Loader.add_multi_constructor("", lambda _loader, _suffix, _node: None)


def nav_pages(nav: Any) -> list[str]:
    """Every page of a nav: strings, lists, and {title: page or sub-nav} mappings."""
    if isinstance(nav, str):
        return [nav]
    if isinstance(nav, list):
        return [page for item in nav for page in nav_pages(item)]
    if isinstance(nav, dict):
        return [page for value in nav.values() for page in nav_pages(value)]
    return []


def test_readme_links_docs() -> None:
    links = relative_links(README.read_text(encoding="utf-8"))
    assert any(link.startswith("docs/") for link in links), "README links into docs/"


@pytest.mark.parametrize("target", relative_links(README.read_text(encoding="utf-8")))
def test_readme_relative_link_resolves(target: str) -> None:
    path = (README.parent / target).resolve()
    assert path.is_file(), f"README.md links to {target}, which does not exist"
    assert path.is_relative_to(ROOT), f"README.md links to {target}, outside the repository"


def mkdocs_config() -> dict[str, Any]:
    config: dict[str, Any] = yaml.load(MKDOCS.read_text(encoding="utf-8"), Loader=_Loader)
    return config


def test_mkdocs_nav_pages_exist() -> None:
    config = mkdocs_config()
    pages = nav_pages(config["nav"])
    assert pages, "mkdocs.yml has a nav"
    docs_dir = ROOT / config.get("docs_dir", "docs")
    missing = [p for p in pages if not EXTERNAL.match(p) and not (docs_dir / p).is_file()]
    assert not missing, f"nav pages missing from {docs_dir.name}/: {missing}"


def test_every_page_is_in_the_nav() -> None:
    pages = set(nav_pages(mkdocs_config()["nav"]))
    on_disk = {path.relative_to(DOCS).as_posix() for path in DOCS.rglob("*.md")}
    orphans = sorted(on_disk - pages)
    assert not orphans, f"pages under docs/ that the nav leaves out: {orphans}"


def test_link_helpers() -> None:
    text = (
        "[a](docs/api.md#errors) [b](https://example.com) [c](#local) `[d](docs/no.md)`\n"
        '```sh\n[e](docs/no.md)\n```\n[f](SECURITY.md "title") ![g](docs/img.png)'
    )
    assert relative_links(text) == ["docs/api.md", "SECURITY.md", "docs/img.png"]
    nav = [{"A": "a.md"}, "b.md", {"C": [{"D": "c/d.md"}]}]
    assert nav_pages(nav) == ["a.md", "b.md", "c/d.md"]
