"""`upwatch users …` as an operator runs it, against SQLite and (when
UPWATCH_TEST_DATABASE_URL is set) PostgreSQL: the password goes in on standard input or
at a hidden prompt, and never comes out."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support.databases import fresh_store
from tests.support.servers import Env

PASSWORD = "correct horse battery staple"
NEW_PASSWORD = "a whole new password"


class Cli:
    def __init__(self, env: Env, database_url: str) -> None:
        self.vars = {**env.vars, "UPWATCH_DATABASE_URL": database_url}

    def __call__(self, *args: str, stdin: str = "") -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "upwatch", *args],
            env=self.vars,
            input=stdin,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )


@pytest.fixture
async def cli(tmp_path: Path, database_url: str) -> Cli:
    store = await fresh_store(database_url)  # migrated, and PostgreSQL emptied
    await store.close()
    return Cli(Env(tmp_path), database_url)


def shows(done: subprocess.CompletedProcess[str], secret: str) -> bool:
    return secret in done.stdout or secret in done.stderr


def test_users_are_created_listed_changed_and_deleted(cli: Cli) -> None:
    assert cli("teams", "create", "ops").returncode == 0
    created = cli(
        "users", "create", "Ann@Example.com", "--team", "ops", "--password-stdin", stdin=PASSWORD
    )
    assert created.returncode == 0, created.stderr
    assert created.stdout == ""
    assert "created user ann@example.com (admin, team ops)" in created.stderr
    assert not shows(created, PASSWORD)
    viewer = cli(
        "users",
        "create",
        "bob@example.com",
        "--team",
        "ops",
        "--role",
        "viewer",
        "--password-stdin",
        stdin=PASSWORD + "\n",
    )
    assert viewer.returncode == 0, viewer.stderr

    listed = cli("users", "list", "--json")
    assert listed.returncode == 0
    users = json.loads(listed.stdout)
    assert [(u["email"], u["team"], u["role"]) for u in users] == [
        ("ann@example.com", "ops", "admin"),
        ("bob@example.com", "ops", "viewer"),
    ]
    assert set(users[0]) == {
        "id",
        "email",
        "team",
        "role",
        "createdAt",
        "updatedAt",
        "passwordChangedAt",
    }
    table = cli("users", "list")
    assert "ann@example.com" in table.stdout
    assert "viewer" in table.stdout
    for out in (listed, table):
        assert "argon2" not in out.stdout
        assert not shows(out, PASSWORD)

    changed = cli(
        "users", "set-password", "ANN@example.com", "--password-stdin", stdin=NEW_PASSWORD
    )
    assert changed.returncode == 0, changed.stderr
    assert "sessions are ended" in changed.stderr
    assert not shows(changed, NEW_PASSWORD)
    after = {u["email"]: u for u in json.loads(cli("users", "list", "--json").stdout)}
    ann = after["ann@example.com"]
    assert ann["passwordChangedAt"] > users[0]["passwordChangedAt"]

    deleted = cli("users", "delete", "bob@example.com")
    assert deleted.returncode == 0, deleted.stderr
    assert [u["email"] for u in json.loads(cli("users", "list", "--json").stdout)] == [
        "ann@example.com"
    ]


def test_without_stdin_the_password_is_asked_twice(cli: Cli) -> None:
    assert cli("teams", "create", "ops").returncode == 0
    done = cli(
        "users", "create", "ann@example.com", "--team", "ops", stdin=f"{PASSWORD}\n{PASSWORD}\n"
    )
    assert done.returncode == 0, done.stderr
    assert "Repeat for confirmation" in done.stdout + done.stderr
    assert not shows(done, PASSWORD)


BAD_INPUT = [
    # (arguments, standard input, exit status, what the one line says)
    (["create", "ann@example.com", "--team", "nope"], PASSWORD, 1, "no team named 'nope'"),
    (["create", "ANN@example.com", "--team", "ops"], PASSWORD, 1, "already exists"),
    (["create", "bob@example.com", "--team", "ops"], "short pw", 2, "at least 12"),
    (["create", "bob@example.com", "--team", "ops"], "password1234", 2, "too common"),
    (["create", "bob@example.com", "--team", "ops"], "", 2, "no password on standard"),
    (["create", "not-an-address", "--team", "ops"], PASSWORD, 2, "email must look like"),
    (["create", "bob@example.com", "--team", "ops", "--role", "owner"], PASSWORD, 2, "role"),
    (["set-password", "nobody@example.com"], PASSWORD, 1, "no user with email"),
    (["set-password", "ann@example.com"], "tiny", 2, "at least 12"),
    (["delete", "nobody@example.com"], "", 1, "no user with email"),
]


def test_bad_input_is_one_clear_line_and_a_failing_status(cli: Cli) -> None:
    assert cli("teams", "create", "ops").returncode == 0
    first = cli(
        "users", "create", "ann@example.com", "--team", "ops", "--password-stdin", stdin=PASSWORD
    )
    assert first.returncode == 0, first.stderr
    for args, stdin, status, message in BAD_INPUT:
        if args[0] in ("create", "set-password"):
            args = [*args, "--password-stdin"]
        done = cli("users", *args, stdin=stdin)
        assert done.returncode == status, (args, done.stderr)
        lines = done.stderr.strip().splitlines()
        assert len(lines) == 1, (args, done.stderr)
        assert lines[0].startswith("upwatch: "), lines
        assert message in lines[0], lines
        assert done.stdout == ""
        if stdin:
            assert not shows(done, stdin), args
    assert [u["email"] for u in json.loads(cli("users", "list", "--json").stdout)] == [
        "ann@example.com"
    ]
