"""The extension's preferences (Edit > Preferences > Add-ons > lvss): how to reach the server."""
import bpy
from bpy.props import EnumProperty, FloatProperty, StringProperty

from . import remote

PACKAGE = __package__


class LvssPreferences(bpy.types.AddonPreferences):
    bl_idname = PACKAGE

    server: StringProperty(
        name="Server", default=remote.DEFAULT_SERVER,
        description="Address of the lvss server as HOST:PORT (start one with: lvss serve); empty: $LVSS_SERVER")
    token_file: StringProperty(
        name="Token File", subtype="FILE_PATH", default="",
        description="File holding the token the server requires (lvss serve --token-file); empty: "
                    "$LVSS_TOKEN_FILE, else none")
    tls_ca: StringProperty(
        name="TLS Certificate", subtype="FILE_PATH", default="",
        description="CA certificate (PEM) of a server that uses TLS; empty: plain connection")
    timeout: FloatProperty(
        name="Timeout", default=600.0, min=1.0, max=86400.0, subtype="TIME_ABSOLUTE", unit="TIME_ABSOLUTE",
        description="Give up (and stop the job on the server) after this many seconds")
    connection: EnumProperty(
        name="Connection", default="AUTO",
        items=(("AUTO", "Auto", "gRPC inside Blender when it can import grpc, else lvss remote (lvss remote "
                         "too for a backdrop where Blender's Python cannot make one)"),
               ("GRPC", "gRPC in Blender", "Use the bundled grpcio wheels (or an lvss installed in Blender)"),
               ("COMMAND", "lvss remote", "Run `lvss remote` with the Python set below")),
        description="How Blender talks to the server")
    python: StringProperty(
        name="Python with lvss", subtype="FILE_PATH", default="",
        description="Python executable of an environment where lvss is installed (for lvss remote); "
                    "empty: $LVSS_PYTHON")

    def draw(self, context):
        layout = self.layout
        layout.use_property_split = True
        col = layout.column()
        col.prop(self, "server")
        col.prop(self, "token_file")
        col.prop(self, "tls_ca")
        col.prop(self, "timeout")
        col.separator()
        col.prop(self, "connection")
        sub = col.column()
        sub.active = self.connection != "GRPC"
        sub.prop(self, "python")
        grpc_ok = remote.load_client() is not None
        box = layout.box()
        box.label(text=("gRPC client available in Blender" if grpc_ok else
                        "Blender cannot import grpc: lvss remote with 'Python with lvss' is used"),
                  icon="CHECKMARK" if grpc_ok else "INFO")
        host, port = remote.host_port(self.server or remote.DEFAULT_SERVER)
        box.label(text=f"Start a server with:  lvss serve --host {host} --port {port}")


def get(context) -> LvssPreferences:
    return context.preferences.addons[PACKAGE].preferences


def settings(context, **options) -> remote.Settings:
    """A request's settings: the connection from the preferences (an empty field: $LVSS_SERVER,
    $LVSS_TOKEN_FILE, $LVSS_PYTHON, as lvss.ext_client resolves them for both extensions), the
    options from the operator."""
    p = get(context)
    client = remote.client
    path = lambda value: bpy.path.abspath(value) if value else ""  # noqa: E731  ("//" = the .blend's folder)
    return remote.Settings(server=client.resolve_server(p.server)[0],
                           token_file=client.resolve_token_file(path(p.token_file)), tls_ca=path(p.tls_ca),
                           timeout=float(p.timeout), connection=p.connection,
                           python=client.resolve_python(path(p.python)), **options)
