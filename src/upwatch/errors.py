"""The exception hierarchy. An exception's docstring is its default message."""

from __future__ import annotations


class UpwatchError(Exception):
    """Something went wrong."""

    def __init__(self, message: str | None = None) -> None:
        super().__init__(message or (self.__doc__ or "").strip())

    @property
    def message(self) -> str:
        return str(self)


class ConfigError(UpwatchError):
    """Invalid configuration."""


class DatabaseUnavailable(UpwatchError):
    """The database cannot be reached."""


class NotFound(UpwatchError):
    """Not found."""


class MonitorNotFound(NotFound):
    """TCP monitor not found."""


class LimitExceeded(UpwatchError):
    """A limit was reached."""


class MonitorLimitExceeded(LimitExceeded):
    """Maximum number of TCP monitors reached."""


class TeamNotFound(NotFound):
    """No such team."""


class TeamExists(UpwatchError):
    """A team with this name already exists."""


class KeyNotFound(NotFound):
    """No such API key."""


class ChannelNotFound(NotFound):
    """Notification channel not found."""


class UnknownChannels(UpwatchError):
    """Unknown notification channel."""

    def __init__(self, ids: list[str]) -> None:
        super().__init__(f"unknown notification channel: {', '.join(ids)}")
        self.ids = ids


class WindowNotFound(NotFound):
    """Maintenance window not found."""


class MonitorsUnknown(UpwatchError):
    """Unknown TCP monitor."""

    def __init__(self, ids: list[str]) -> None:
        super().__init__(f"unknown TCP monitor: {', '.join(ids)}")
        self.ids = ids


class FamilyMismatch(UpwatchError):
    """ipFamily contradicts the host."""


class UserNotFound(NotFound):
    """No such user."""


class UserExists(UpwatchError):
    """A user with this email address already exists."""


class StatusPageNotFound(NotFound):
    """Status page not found."""


class SlugTaken(UpwatchError):
    """This slug is already taken."""
