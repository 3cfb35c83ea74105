import os
import tempfile

import pytest


@pytest.fixture(scope="session")
def deb_cache():
    """A fixed package cache under the system temp dir, so repeated test runs download nothing."""
    path = os.path.join(tempfile.gettempdir(), "labcloud-debcache")
    os.makedirs(path, exist_ok=True)
    return path
