"""Screenshots of the lvss Inkscape extension as a designer sees it, on a virtual display.

    python bench/inkscape_screens.py OUT_DIR [--image photo.png] [--keep]

Starts Xvfb, a real ``lvss serve`` on loopback (CPU, one thread, quality fast), installs the extension
into a temporary Inkscape profile (``lvss install-inkscape-extension --server ...``, so the dialog's
Server tab names the recorded address), and photographs (``import -window root``, ImageMagick):

  01-dialog.png          the extension's dialog (Vectorize tab), opened with the bitmap selected
  02-dialog-server.png   the Server tab (the address an empty field means here)
  03-progress-N.png      the progress window while the server works (one shot a second)
  04-result.png          Inkscape after the run: the result group "lvss: NAME" selected
  05-layers.png          the same with the Layers and Objects dialog open (layer names)
  06-message.png         a failure (no server at the address): the extension's own message
  07-inkscape-header.png the same failure with the progress window turned off: the message goes to
                         stderr and Inkscape 1.2 shows it under its own header (what the extension
                         avoids whenever it can open a window)

Needs Inkscape 1.2, Xvfb, ImageMagick's ``import``, xdotool, x11-utils (xwininfo), Debian's python3
with lxml and GTK (see .ci/run), and lvss with its server extra in this Python.
"""
from __future__ import annotations

import argparse
import base64
import io
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
ACTION = "org.lvss.lvss-vectorize"
# where the dialog's tabs are, in the dialog window (Inkscape 1.2.2, default theme)
SERVER_TAB = (145, 30)
VECTORIZE_TAB = (62, 30)
APPLY = (843, 570)
CLOSE = (754, 570)
LAYERS_ITEM = (226, 37)  # Layer > Layers and Objects..., in the document window
PREFS = {"paths": "48", "levels": "2", "mode": "layered", "seed": "0", "insert_as": "layers",
         "original": "hide", "timeout": "300", "quality": "fast"}


def free_display() -> str:
    for n in range(60, 120):
        if not os.path.exists(f"/tmp/.X11-unix/X{n}") and not os.path.exists(f"/tmp/.X{n}-lock"):
            return f":{n}"
    raise SystemExit("no free X display number between :60 and :119")


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Screen:
    def __init__(self, out: Path):
        self.display = free_display()
        self.out = out
        self.xvfb = subprocess.Popen(["Xvfb", self.display, "-screen", "0", "1280x860x24", "-nolisten", "tcp"],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        time.sleep(1.5)
        self.env = dict(os.environ, DISPLAY=self.display)
        # a window manager, as on a desktop (frames, dialogs centred on their parent), when there is one
        self.wm = (subprocess.Popen(["openbox"], env=self.env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
                   if shutil.which("openbox") else None)
        time.sleep(1.0)

    def shot(self, name: str) -> Path:
        path = self.out / name
        subprocess.run(["import", "-window", "root", str(path)], env=self.env, check=True, timeout=30)
        print("wrote", path, flush=True)
        return path

    def windows(self) -> str:
        return subprocess.run(["xwininfo", "-root", "-tree"], capture_output=True, text=True,
                              env=self.env, timeout=20).stdout

    def wait_for(self, text: str, timeout: float = 90.0, gone: bool = False) -> bool:
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            if (text in self.windows()) != gone:
                return True
            time.sleep(0.2)
        return False

    def xdotool(self, *args: str) -> str:
        return subprocess.run(["xdotool", *args], capture_output=True, text=True, env=self.env, timeout=20).stdout

    def close(self) -> None:
        if self.wm is not None:
            self.wm.terminate()
            self.wm.wait(10)
        self.xvfb.terminate()
        self.xvfb.wait(10)


def start_server(env: dict) -> tuple[subprocess.Popen, str]:
    proc = subprocess.Popen([sys.executable, "-m", "lvss", "serve", "--host", "127.0.0.1", "--port", "0",
                             "--device", "cpu", "--threads", "1", "--quality", "fast"],
                            cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    end = time.monotonic() + 120
    while time.monotonic() < end:
        line = proc.stdout.readline()
        if "listening on" in line:
            return proc, line.split("listening on", 1)[1].split()[0]
        if proc.poll() is not None:
            break
    proc.kill()
    raise SystemExit("lvss serve did not start")


def document(png: bytes, name: str) -> str:
    uri = "data:image/png;base64," + base64.b64encode(png).decode()
    from PIL import Image

    w, h = Image.open(io.BytesIO(png)).size
    scale = 360.0 / max(w, h)
    return f"""<svg xmlns="http://www.w3.org/2000/svg" xmlns:xlink="http://www.w3.org/1999/xlink"
     xmlns:inkscape="http://www.inkscape.org/namespaces/inkscape" width="420" height="320" viewBox="0 0 420 320">
  <g id="bg" inkscape:groupmode="layer" inkscape:label="Background">
    <rect id="paper" x="0" y="0" width="420" height="320" fill="#f4f0e8"/>
  </g>
  <g id="layer1" inkscape:groupmode="layer" inkscape:label="Layer 1">
    <image id="photo" inkscape:label="{name}" x="20" y="20" width="{w * scale:.1f}" height="{h * scale:.1f}"
           preserveAspectRatio="none" xlink:href="{uri}"/>
  </g>
</svg>"""


def install(profile: Path, server: str, prefs: dict) -> None:
    profile.mkdir(parents=True, exist_ok=True)
    attrs = " ".join(f'org.lvss.lvss_vectorize.{k}="{v}"' for k, v in prefs.items())
    (profile / "preferences.xml").write_text(
        '<?xml version="1.0" encoding="UTF-8" standalone="no"?>\n'
        '<inkscape xmlns:sodipodi="http://sodipodi.sourceforge.net/DTD/sodipodi-0.dtd" '
        'xmlns:inkscape="http://www.inkscape.org/namespaces/inkscape" version="1">\n'
        f'  <group id="extensions" {attrs} />\n</inkscape>\n')
    env = dict(os.environ, INKSCAPE_PROFILE_DIR=str(profile), PYTHONPATH=str(REPO))
    subprocess.run([sys.executable, "-m", "lvss", "install-inkscape-extension", "--server", server],
                   check=True, env=env, cwd=REPO, timeout=120, stdout=subprocess.DEVNULL)


def inkscape(screen: Screen, profile: Path, doc: Path, actions: str, **env) -> subprocess.Popen:
    e = dict(screen.env, INKSCAPE_PROFILE_DIR=str(profile), LVSS_PYTHON=sys.executable, **env)
    e.pop("LVSS_SERVER", None) if "LVSS_SERVER" not in env else None
    e.pop("PYTHONPATH", None)  # lvss is found through the installer's record
    return subprocess.Popen(["inkscape", "--with-gui", f"--actions={actions}", str(doc)], env=e, cwd=doc.parent,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)


def stop(proc: subprocess.Popen) -> None:
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    proc.wait(20)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("out", type=Path, help="folder for the PNGs")
    p.add_argument("--image", type=Path, help="bitmap to vectorize (default: skimage's coffee, 320 px)")
    p.add_argument("--keep", action="store_true", help="keep the temporary folder (documents, profile)")
    args = p.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    for tool in ("inkscape", "Xvfb", "import", "xdotool", "xwininfo"):
        if shutil.which(tool) is None:
            raise SystemExit(f"{tool} is missing (apt-get install inkscape xvfb imagemagick xdotool x11-utils)")
    tmp = Path(tempfile.mkdtemp(prefix="lvss-screens-"))
    if args.image:
        png, name = args.image.read_bytes(), args.image.name
    else:
        from PIL import Image
        from skimage import data

        buf = io.BytesIO()
        Image.fromarray(data.coffee()).resize((320, 213), Image.LANCZOS).save(buf, "PNG")
        png, name = buf.getvalue(), "coffee.png"
    doc = tmp / "drawing.svg"
    doc.write_text(document(png, name))
    server_env = dict(os.environ, PYTHONPATH=str(REPO))
    server, address = start_server(server_env)
    screen = Screen(args.out)
    try:
        profile = tmp / "profile"
        install(profile, address, PREFS)
        # 1. the dialog, opened from the menu with the bitmap selected; 2. Apply: the progress window
        # (over Inkscape's own, unpainted working window); then the result, selected
        ink = inkscape(screen, profile, doc, "select-by-id:photo")
        time.sleep(15.0)
        main_win = screen.xdotool("search", "--name", "drawing.svg - Inkscape").split()
        if main_win:
            win = main_win[0]
            screen.xdotool("windowactivate", "--sync", win)
            for x, y in ((424, 12), (437, 238), (828, 313)):  # Extensions > Images > Vectorize Bitmap (lvss)...
                screen.xdotool("mousemove", "--window", win, str(x), str(y), "click", "1")
                time.sleep(1.5)
            if screen.wait_for('"Vectorize Bitmap (lvss)"', 30):
                time.sleep(2.0)
                screen.shot("01-dialog.png")
                dlg = screen.xdotool("search", "--name", "^Vectorize Bitmap \\(lvss\\)$").split()
                if dlg:
                    geo = screen.xdotool("getwindowgeometry", dlg[-1])
                    print("dialog", " ".join(geo.split()))
                    screen.xdotool("mousemove", "--window", dlg[-1], str(SERVER_TAB[0]), str(SERVER_TAB[1]), "click", "1")
                    time.sleep(1.5)
                    screen.shot("02-dialog-server.png")
                    screen.xdotool("mousemove", "--window", dlg[-1], str(VECTORIZE_TAB[0]), str(VECTORIZE_TAB[1]), "click", "1")
                    time.sleep(0.5)
                    screen.xdotool("mousemove", "--window", dlg[-1], str(APPLY[0]), str(APPLY[1]), "click", "1")
                    if screen.wait_for('"lvss_vectorize.py" "Lvss_vectorize.py"', 60):
                        for k in range(1, 30):
                            time.sleep(0.7 if k == 1 else 1.0)
                            if '"lvss_vectorize.py" "Lvss_vectorize.py"' not in screen.windows():
                                break
                            screen.shot(f"03-progress-{k}.png")
                        screen.wait_for('"lvss_vectorize.py" "Lvss_vectorize.py"', 300, gone=True)
                        time.sleep(2.5)
                        screen.xdotool("mousemove", "--window", dlg[-1], str(CLOSE[0]), str(CLOSE[1]), "click", "1")
                        time.sleep(1.5)
                        screen.shot("04-result.png")
                        screen.xdotool("windowactivate", "--sync", win)
                        for x, y in ((154, 12), LAYERS_ITEM):  # Layer > Layers and Objects...
                            screen.xdotool("mousemove", "--window", win, str(x), str(y), "click", "1")
                            time.sleep(1.5)
                        time.sleep(2.5)
                        screen.shot("05-layers.png")
        stop(ink)
        # 3. a failure: the extension's own message ...
        port = closed_port()
        ink = inkscape(screen, profile, doc, f"select-by-id:photo;{ACTION}.noprefs",
                       LVSS_SERVER=f"127.0.0.1:{port}", LVSS_MESSAGE_TIMEOUT="20")
        if screen.wait_for('"Vectorize Bitmap (lvss)"', 90):
            time.sleep(4.0)
            screen.shot("06-message.png")
        stop(ink)
        # ... and the same failure without any window of the extension's: Inkscape's header
        install(tmp / "profile-nowindow", address, dict(PREFS, progress_window="false"))
        ink = inkscape(screen, tmp / "profile-nowindow", doc, f"select-by-id:photo;{ACTION}.noprefs",
                       LVSS_SERVER=f"127.0.0.1:{port}")
        time.sleep(12.0)
        screen.shot("07-inkscape-header.png")
        stop(ink)
    finally:
        screen.close()
        server.terminate()
        server.wait(20)
        if args.keep:
            print("kept", tmp)
        else:
            shutil.rmtree(tmp, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
