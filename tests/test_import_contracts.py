"""The import contracts of pyproject.toml ([tool.importlinter]) hold: a component reaches another
only through its `schemas` module, `common` imports no component, and what runs in the cloud
never imports the operator's tools. The second half shows the check fails when it should."""
import os
import re
import shutil
import subprocess
import sys

import pytest

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
LINT_IMPORTS = os.path.join(os.path.dirname(sys.executable), "lint-imports")
PACKAGES = ("common", "services", "hostagent", "gateway", "labcloud", "imagebuilder")


def lint_imports(root):
    """Run lint-imports on the tree at `root`, with only that tree on the import path."""
    env = dict(os.environ, PYTHONPATH=root)
    return subprocess.run([LINT_IMPORTS, "--no-cache", "--no-logo"], cwd=root, env=env,
                          capture_output=True, text=True, timeout=120)


def test_the_tree_keeps_its_import_contracts():
    result = lint_imports(REPO)
    assert result.returncode == 0, f"import contracts broken:\n{result.stdout}{result.stderr}"
    assert "0 broken" in result.stdout


@pytest.fixture
def tree_copy(tmp_path):
    """The packages' Python files and pyproject.toml, copied to be broken on purpose."""
    for package in PACKAGES:
        shutil.copytree(os.path.join(REPO, package), tmp_path / package,
                        ignore=lambda _dir, names: [n for n in names if n == "__pycache__" or (
                            os.path.isfile(os.path.join(_dir, n)) and not n.endswith(".py"))])
    shutil.copy(os.path.join(REPO, "pyproject.toml"), tmp_path / "pyproject.toml")
    return tmp_path


# (file to add the import to, the import, the contract it breaks, what the report must name)
BAD_IMPORTS = [
    # Another service's internals, from inside a function: function-level imports count too.
    ("services/metrics/service.py",
     "def _peek():\n    from hostagent.domains import *  # noqa\n",
     "only through their schemas module", "services.metrics.service -> hostagent.domains"),
    ("gateway/routes.py", "import services.instances.models\n",
     "only through their schemas module", "gateway.routes -> services.instances.models"),
    # The bootstrap exception names two importers, not all of labcloud.
    ("labcloud/client.py", "from services.accounts.bootstrap import ensure_admin  # noqa\n",
     "only through their schemas module", "labcloud.client -> services.accounts.bootstrap"),
    # labcloud may use imagebuilder; the reverse is a cycle.
    ("imagebuilder/build.py", "import labcloud.client  # noqa\n",
     "only through their schemas module", "imagebuilder.build -> labcloud.client"),
    # common imports no component, not even a schemas module.
    ("common/config.py", "import hostagent.schemas  # noqa\n",
     "common imports no component", "common.config -> hostagent.schemas"),
    ("hostagent/service.py", "import labcloud.client  # noqa\n",
     "never import labcloud or imagebuilder", "hostagent.service -> labcloud.client"),
]


@pytest.mark.parametrize("path, line, contract, named", BAD_IMPORTS,
                         ids=[bad[3] for bad in BAD_IMPORTS])
def test_a_forbidden_import_breaks_the_build(tree_copy, path, line, contract, named):
    assert lint_imports(str(tree_copy)).returncode == 0  # the copy is clean before the change
    with open(tree_copy / path, "a") as source:
        source.write("\n\n" + line)
    result = lint_imports(str(tree_copy))
    report = result.stdout + result.stderr
    assert result.returncode != 0, report
    assert any(contract in line and " BROKEN" in line for line in report.splitlines()), report
    assert re.search(rf"^-\s+{re.escape(named)} \(l\.\d+\)$", report, re.M), report
