"""lvss for Blender: import layered SVGs as back-to-front curve collections, and vectorize images
with an lvss server.

* File > Import > Layered SVG (lvss): one collection per SVG layer, filled 2D Bézier curves.
* Object > Vectorize Image (lvss), and the "lvss" tab of the 3D viewport's sidebar: sends the active
  image (an image Empty or an image plane) to an lvss server and inserts the result over it.

The connection to the server is set in Edit > Preferences > Add-ons > lvss.
"""
import bpy

from . import operators, preferences


def register():
    bpy.utils.register_class(preferences.LvssPreferences)
    for cls in operators.CLASSES:
        bpy.utils.register_class(cls)
    bpy.types.Scene.lvss = bpy.props.PointerProperty(type=operators.LvssSceneSettings)
    bpy.types.TOPBAR_MT_file_import.append(operators.menu_import)
    bpy.types.VIEW3D_MT_object.append(operators.menu_object)


def unregister():
    bpy.types.VIEW3D_MT_object.remove(operators.menu_object)
    bpy.types.TOPBAR_MT_file_import.remove(operators.menu_import)
    del bpy.types.Scene.lvss
    for cls in reversed(operators.CLASSES):
        bpy.utils.unregister_class(cls)
    bpy.utils.unregister_class(preferences.LvssPreferences)
