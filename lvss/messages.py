"""What lvss's clients tell a user, in one place: the pipeline's stages in a designer's words and the
messages for a failed or cancelled request.

Pure standard library and no lvss imports, so that every client can use it: ``lvss remote`` (its
progress bar and its ``--events`` JSON lines carry :func:`stage_label`), the Python client
(:attr:`lvss.client.Progress.label`), and the remote client of the Inkscape and Blender extensions
(:mod:`lvss.ext_client`), which carry this file with it (``lvss.ext_client.BUNDLED``).

The pipeline's progress events carry a stage key (``lvss.pipeline._SPAN``); :data:`STAGE_WORDS` says
what each means to someone who draws. A stage this table does not know yet reads as "Working", so a
newer server never shows its internal names.
"""
from __future__ import annotations

# stage key of a progress event -> what a designer reads; several stages share words on purpose
STAGE_WORDS = {
    "start": "Starting",
    "queued": "Waiting for the server",
    "load": "Reading the image",
    "simplify": "Simplifying",
    "segment": "Finding shapes",
    "layering": "Finding shapes",
    "recolor": "Finding shapes",  # compact mode: regions merged by colour
    "structure": "Fitting shapes",
    "colour": "Fitting shapes",
    "refine": "Adding detail",
    "detail": "Adding detail",  # compact mode
    "polish": "Polishing",
    "fills": "Polishing",  # gradient fills fitted after the polish: still work that Cancel can stop
    "export": "Writing",
    "done": "Done",
}
UNKNOWN_STAGE = "Working"
# stages after which cancelling no longer saves time: the result is being written
FINAL_STAGES = ("export", "done")


def stage_label(stage: str | None) -> str:
    """The designer's words for a pipeline stage key ("structure" -> "Fitting shapes"); "Working"
    for a stage this version does not know."""
    return STAGE_WORDS.get(str(stage or "").strip().lower(), UNKNOWN_STAGE)


def queued_text(position: int | None) -> str:
    """"Waiting for the server: 2 jobs ahead" (position = jobs ahead of this one)."""
    n = int(position or 0)
    if n <= 0:
        return "Waiting for the server"
    return f"Waiting for the server: {n} job{'s' if n != 1 else ''} ahead"


def is_final(stage: str | None) -> bool:
    """True once the result is being written: Cancel would only throw away a finished result."""
    return str(stage or "").strip().lower() in FINAL_STAGES


def duration_text(seconds: float) -> str:
    """A short, rounded duration: "8 s", "40 s", "2 min", "1 h 05 min" (to the nearest 1 s, 5 s or minute)."""
    s = max(0.0, float(seconds))
    if s < 10:
        return f"{max(1, round(s))} s"
    if s < 60:
        return f"{int(round(s / 5.0) * 5) or 5} s"
    if s < 3600:
        return f"{max(1, round(s / 60.0))} min"
    return f"{int(s // 3600)} h {int(s % 3600 // 60):02d} min"


# -- a failed request -----------------------------------------------------------------------------
def host_port(server: str) -> tuple[str, str]:
    """("127.0.0.1", "50051") from "127.0.0.1:50051" (the port defaults to 50051)."""
    host, sep, port = str(server).rpartition(":")
    return (host.strip("[]"), port) if sep and port.isdigit() else (str(server), "50051")


def unreachable(server: str, detail: str = "", where_to_set: str = "the Server tab",
                env: str = "LVSS_SERVER") -> str:
    """No server answers at ``server``: what to start, or where to set another address."""
    host, port = host_port(server)
    why = f" ({detail})" if detail else ""
    return (f"Could not reach the lvss server at {server}{why}.\n"
            "Start it in a terminal, in the Python environment where lvss is installed:\n"
            f"    lvss serve --host {host} --port {port}\n"
            f"or enter the address of a running server on {where_to_set} "
            f"(or in the environment variable {env}).")


def unreachable_line(server: str, hint: str = "") -> str:
    """The one-line form of :func:`unreachable` (``lvss remote``'s error line, ClientError.message)."""
    host, port = host_port(server)
    return (f"Could not reach the lvss server at {server}; start it with "
            f"`lvss serve --host {host} --port {port}`, or give the address of a running server{hint}")


def timed_out(server: str, name: str, timeout: float, detail: str = "",
              where_to_set: str = "on the Server tab") -> str:
    extra = f" ({detail})" if detail else ""
    return (f"The lvss server at {server} did not finish '{name}' within the timeout of {timeout:g} s{extra}.\n"
            f"Raise the timeout {where_to_set}, or ask for fewer paths or levels.")


def refused(name: str, detail: str) -> str:
    return f"The lvss server refused '{name}': {detail}\nChange the image or the options and try again."


def wrong_token(server: str, token_file: str, detail: str, env: str = "LVSS_TOKEN_FILE", where: str = "") -> str:
    sent = f"the token in {token_file}" if token_file else "no token"
    return (f"The lvss server at {server} rejected the request: wrong or missing token ({detail}); "
            f"this run sent {sent}.\nPut the token the server was started with into a file and "
            f"choose that file as the token file{where} (or set {env}).")


def busy(server: str, name: str, detail: str) -> str:
    return (f"The lvss server at {server} cannot take '{name}' now: {detail}\n"
            "Wait for its queue to drain, or send a smaller image or fewer paths.")


def cancelled(name: str = "", unchanged: str = "") -> str:
    """You pressed Cancel: "Cancelled while vectorizing 'cat.png'; the job was stopped on the server"
    (+ ``unchanged``, e.g. " and the drawing is unchanged")."""
    what = f" while vectorizing '{name}'" if name else ""
    return f"Cancelled{what}; the job was stopped on the server{unchanged}."


def server_failed(name: str, detail: str) -> str:
    return f"The lvss server failed on '{name}': {detail}\nSee the server's log for details."


__all__ = ["STAGE_WORDS", "UNKNOWN_STAGE", "FINAL_STAGES", "stage_label", "queued_text", "is_final",
           "duration_text", "host_port", "unreachable", "unreachable_line", "timed_out", "refused", "wrong_token", "busy",
           "cancelled", "server_failed"]


# a few plain colour names, enough to tell layers apart in an editor's layer list; lvss names its
# layers with them (lvss.layering) and the Blender importer its objects, so the words agree
COLOUR_NAMES = {
    "black": (0, 0, 0), "dark grey": (64, 64, 64), "grey": (128, 128, 128), "light grey": (192, 192, 192),
    "white": (255, 255, 255), "red": (220, 40, 40), "dark red": (128, 20, 20), "orange": (240, 140, 30),
    "brown": (130, 80, 40), "beige": (225, 200, 160), "yellow": (240, 220, 40), "olive": (128, 128, 30),
    "green": (50, 160, 50), "light green": (150, 220, 90), "dark green": (20, 90, 40), "teal": (20, 130, 130),
    "cyan": (60, 200, 220), "light blue": (140, 190, 240), "blue": (40, 80, 220), "navy": (20, 30, 110),
    "purple": (120, 50, 160), "magenta": (210, 50, 180), "pink": (240, 160, 190),
}


def colour_name(rgb) -> str:
    """The nearest plain colour name of straight sRGB in [0, 1] (e.g. "dark green"), by a weighted RGB
    distance (eyes are most sensitive to green, least to blue)."""
    c = [min(max(float(v), 0.0), 1.0) * 255.0 for v in list(rgb)[:3]]
    return min(COLOUR_NAMES, key=lambda n: sum(w * (r - v) ** 2 for w, r, v in zip((2.0, 4.0, 3.0),
                                                                                   COLOUR_NAMES[n], c)))

