"""Shared pytest configuration: the markers used by the tests."""


def pytest_configure(config):
    config.addinivalue_line(
        "markers", "slow: takes tens of seconds (e.g. TFDS preparations); still in the default run"
    )
