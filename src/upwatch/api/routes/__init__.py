"""One router per resource. Each imports its dependencies from api/deps.py."""
