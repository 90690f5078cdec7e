"""The HTTP API: app factory, auth, errors, request/response models, routes."""

from upwatch.api.app import create_app

__all__ = ["create_app"]
