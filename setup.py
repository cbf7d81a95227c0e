"""The package list, discovered instead of written out; pyproject.toml holds everything else.

A hand-kept list once left edge_asc.bench out of the installed package, unseen by
the tests' editable install; tests/test_install.py builds the wheel and runs it. The repository
keeps edge_asc/, training/ and models/ side by side, but an install puts only edge_asc into
site-packages: training/ becomes edge_asc.training (with every subpackage it grows), models/
the package data edge_asc.models.
"""

from setuptools import find_namespace_packages, find_packages, setup

NOT_PACKAGES = ["__pycache__", "*.__pycache__"]


def packages() -> list[str]:
    """Every folder under edge_asc/ (code or data, like samples/) and every package of
    training/, under their installed names."""
    app = find_namespace_packages(where="edge_asc", exclude=NOT_PACKAGES)
    training = find_packages(where="training", exclude=NOT_PACKAGES)
    return [
        "edge_asc",
        *(f"edge_asc.{name}" for name in app),
        "edge_asc.training",
        *(f"edge_asc.training.{name}" for name in training),
        "edge_asc.models",
    ]


setup(
    packages=packages(),
    package_dir={"edge_asc.training": "training", "edge_asc.models": "models"},
)
