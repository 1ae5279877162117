"""Shared fixtures for every test package.

The real-part fixtures (Koji hub stand-in, disk images, RabbitMQ, moto server, datagrepper stack)
live in tests/harness/, as thin wrappers over the ``standins`` package, and are registered here,
so any test can ask for them by name.
"""

import pathlib

import pytest
from hypothesis import settings

# No per-example deadline: on a busy shared machine a slow example is not a failing one.
settings.register_profile("fedimg", deadline=None)
settings.load_profile("fedimg")

pytest_plugins = [
    "tests.harness.disk_images",
    "tests.harness.koji_hub",
    "tests.harness.amqp",
    "tests.harness.aws",
    "tests.harness.datagrepper",
    "tests.harness.glance",
    "tests.harness.registry",
    "tests.harness.summary",
]

# Copies of ../shared/samples (real message bodies, Koji results, images.json files), kept in the
# repo so a clone is self-contained; each file carries a `_source` note where it came from.
SAMPLES = pathlib.Path(__file__).resolve().parent / "data" / "samples"


@pytest.fixture(scope="session")
def samples_dir() -> pathlib.Path:
    """Real message bodies, Koji task results and images.json files."""
    if not SAMPLES.is_dir():
        pytest.fail(f"samples directory {SAMPLES} is missing")
    return SAMPLES
