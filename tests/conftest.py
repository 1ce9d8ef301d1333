"""Shared pytest wiring. Fixtures live in tests/support/*; each area may add its own conftest."""

pytest_plugins: list[str] = []
