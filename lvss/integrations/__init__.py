"""Installing lvss into the editors: ``lvss install-inkscape-extension`` (:mod:`.inkscape`) copies the
Inkscape extension and the remote client it carries into the user's Inkscape; ``lvss
build-blender-extension`` (:mod:`.blender`) builds the Blender extension's .zip. The extensions
themselves live in ``inkscape_ext/`` and ``blender_ext/`` and reach the server through
:mod:`lvss.ext_client`.
"""
