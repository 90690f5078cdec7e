"""Dependencies point one way, for every module of the package:
cli -> service -> api / scheduler -> store / probes -> chores / config / security
-> domain / errors / clock / waiting. Each module is in a layer; it imports only from its own
package and from lower layers. Some layers also keep third-party frameworks out."""

import ast
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[2] / "src" / "upwatch"

# Top-level modules and packages of upwatch/, lowest layer first.
LAYERS: list[set[str]] = [
    {"clock", "errors", "domain", "waiting", "__init__"},
    {"sketch"},
    {"statuspages"},
    {
        "config",
        "security",
        "chores",
        "metrics",
        "incidents",
        "notifications",
        "maintenance",
        "stats",
        "users",
    },
    {"folding"},
    {"logs"},
    {"wire"},
    {"store", "probes"},
    {"delivery"},
    {"api", "scheduler"},
    {"web"},
    {"checkers"},
    {"service"},
    {"cli"},
    {"__main__"},
]
RANK = {unit: rank for rank, units in enumerate(LAYERS) for unit in units}

# Frameworks a part must not import: the API's routes do not build SQL, the checker
# does not know the web framework, the domain is plain Python.
FRAMEWORKS_BANNED = {
    "web": ("sqlalchemy", "asyncpg", "aiosqlite"),
    "api": ("sqlalchemy", "asyncpg", "aiosqlite"),
    "probes": ("sqlalchemy", "fastapi"),
    "store": ("fastapi", "starlette", "uvicorn"),
    "scheduler": ("fastapi", "sqlalchemy", "asyncpg"),
    "chores": ("fastapi", "sqlalchemy"),
    "domain": ("sqlalchemy", "fastapi", "pydantic"),
    "clock": ("sqlalchemy", "fastapi", "pydantic"),
}


def unit_of(path: Path) -> str:
    relative = path.relative_to(SRC)
    return relative.parts[0].removesuffix(".py")


def imports(path: Path) -> set[str]:
    """Every module the file imports; ``from upwatch import x`` counts as upwatch.x."""
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
            if node.module == "upwatch":  # a module, or a name from upwatch/__init__.py
                names.update(
                    f"upwatch.{a.name}" if (SRC / f"{a.name}.py").exists() else "upwatch.__init__"
                    for a in node.names
                )
    return names


MODULES = sorted(SRC.rglob("*.py"))


def test_every_module_is_in_a_layer() -> None:
    assert {unit_of(p) for p in MODULES} <= set(RANK), "add new modules to LAYERS"


@pytest.mark.parametrize("path", MODULES, ids=lambda p: str(p.relative_to(SRC)))
def test_imports_point_down(path: Path) -> None:
    unit = unit_of(path)
    for name in imports(path):
        top = name.split(".")[0]
        if top == "upwatch":
            if name == "upwatch":
                continue
            target = name.split(".")[1]
            assert target == unit or RANK[target] < RANK[unit], f"{unit} imports {name}"
        else:
            assert top not in FRAMEWORKS_BANNED.get(unit, ()), f"{unit} imports {name}"


TESTS = SRC.parents[1] / "tests"


@pytest.mark.parametrize(
    "path", sorted(TESTS.rglob("*.py")), ids=lambda p: str(p.relative_to(TESTS))
)
def test_tests_share_helpers_only_through_support(path: Path) -> None:
    """Test modules import helpers from tests/support/, never from each other or from a
    conftest; support itself imports no test module."""
    for name in imports(path):
        if name == "tests" or name.startswith("tests."):
            assert name.startswith("tests.support"), f"{path.relative_to(TESTS)} imports {name}"
