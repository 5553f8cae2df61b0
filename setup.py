"""The one packaging detail pyproject.toml cannot express (everything else is there): the server,
kept in the ``server/`` folder, installs as the top-level package ``lvss_server``, so it cannot
collide with another project's ``server`` package."""
from setuptools import find_namespace_packages, setup

setup(
    packages=find_namespace_packages(include=["lvss", "lvss.*"], exclude=["*.__pycache__"]) + ["lvss_server"],
    package_dir={"lvss_server": "server"},
)
