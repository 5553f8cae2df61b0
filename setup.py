"""The packaging details pyproject.toml cannot express (everything else is there): the server,
kept in the ``server/`` folder, installs as the top-level package ``lvss_server``, so it cannot
collide with another project's ``server`` package; the Inkscape extension, kept in ``inkscape_ext/``,
installs as ``lvss/inkscape_ext`` and the Blender extension, kept in ``blender_ext/``, as
``lvss/blender_ext`` (data of lvss that `lvss install-inkscape-extension` and
`lvss build-blender-extension` copy from, not packages anyone imports)."""
from setuptools import find_namespace_packages, setup

setup(
    packages=find_namespace_packages(include=["lvss", "lvss.*"], exclude=["*.__pycache__"])
    + ["lvss_server", "lvss.inkscape_ext", "lvss.blender_ext"],
    # the Inkscape extension ships inside lvss, where `lvss install-inkscape-extension` copies it from
    package_dir={"lvss_server": "server", "lvss.inkscape_ext": "inkscape_ext", "lvss.blender_ext": "blender_ext"},
)
