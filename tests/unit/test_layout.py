"""Dependencies point one way: cli -> api / scheduler -> store / probes -> domain."""

import ast
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[2] / "src" / "upwatch"

# package (relative to upwatch/) -> modules it must never import
FORBIDDEN = {
    "api": ("sqlalchemy", "upwatch.scheduler", "upwatch.cli", "upwatch.service"),
    "probes": ("upwatch.store", "upwatch.scheduler", "upwatch.api", "sqlalchemy"),
    "store": ("upwatch.api", "upwatch.scheduler", "upwatch.probes", "upwatch.cli", "fastapi"),
    "scheduler": ("upwatch.api", "upwatch.cli", "fastapi", "sqlalchemy"),
    "domain.py": ("upwatch.", "sqlalchemy", "fastapi", "pydantic"),
    "clock.py": ("upwatch.",),
}


def imports(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
    return names


@pytest.mark.parametrize("part", sorted(FORBIDDEN))
def test_dependencies_point_one_way(part: str) -> None:
    target = SRC / part
    files = [target] if target.is_file() else sorted(target.rglob("*.py"))
    assert files
    for path in files:
        for name in imports(path):
            for banned in FORBIDDEN[part]:
                where = f"{path.relative_to(SRC)} imports {name}"
                assert name != banned.rstrip("."), where
                assert not name.startswith(banned), where
