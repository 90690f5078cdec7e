"""Helpers the tests share: databases, seeding, listeners, servers, the API client.
Test modules import from here, never from each other or from conftest."""
