"""``lvss install-inkscape-extension``: copy the Inkscape extension into the user's Inkscape.

The destination is ``<user data directory>/extensions/lvss``, where Inkscape itself says its user
data directory is (``inkscape --user-data-directory``; it honours INKSCAPE_PROFILE_DIR). Next to the
extension a small ``lvss_vectorize.json`` records the Python this command runs with (and, for a
source checkout, where lvss lives), so that the extension can run ``lvss remote`` with it when
Inkscape's own Python lacks grpcio.

Beside it goes the remote client the extension runs, as the package ``_lvss`` (the files
:data:`lvss.ext_client.BUNDLED`, as the Blender extension carries them), which the extension loads
without importing lvss; and the dialog ``lvss_vectorize.inx`` is written for this installation: its
Server tab label says which address an empty field means here (the one recorded with ``--server``,
else 127.0.0.1:50051), in the words of :func:`lvss.ext_client.server_field_label`, the rule that
resolves the address at run time.

``add_parser(subparsers)`` registers the subcommand on the ``lvss`` CLI (handler in ``func``);
``main(argv)`` runs it standalone (``python -m lvss.integrations.inkscape``).
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

from .. import ext_client

DESCRIPTION = (
    "Install the lvss Inkscape extension (Extensions > Images > Vectorize Bitmap (lvss)) into the "
    "user's Inkscape extensions folder, and record this Python for it."
)
EXTENSION_FILES = (
    "lvss_vectorize.inx", "lvss_vectorize.py", "lvss_ext_image.py", "lvss_ext_place.py",
    "lvss_ext_remote.py", "lvss_ext_progress.py", "README.md",
)
CONFIG_NAME = "lvss_vectorize.json"
SUBDIR = "lvss"


class InstallError(Exception):
    """The extension cannot be installed; the message says what to do."""


def extension_source() -> Path:
    """The folder holding the extension's files: ``lvss/inkscape_ext`` of an installed wheel, else
    the source checkout's ``inkscape_ext/``."""
    here = Path(__file__).resolve().parents[1]
    for cand in (here / "inkscape_ext", here.parent / "inkscape_ext"):
        if (cand / "lvss_vectorize.inx").is_file():
            return cand
    raise InstallError(
        f"The extension's files (lvss_vectorize.inx and the rest) are missing from this lvss installation "
        f"({here}). Reinstall lvss from its source folder (pip install \".[server]\"), which puts them in "
        "lvss/inkscape_ext."
    )


def user_extensions_dir(inkscape: str = "inkscape", timeout: float = 60.0) -> Path:
    """``<inkscape --user-data-directory>/extensions``, as Inkscape reports it."""
    try:
        proc = subprocess.run([inkscape, "--user-data-directory"], capture_output=True, text=True,
                              timeout=timeout, stdin=subprocess.DEVNULL)
    except FileNotFoundError:
        raise InstallError(
            f"Inkscape was not found ({inkscape!r} is not on PATH). Install Inkscape 1.x, pass its "
            "program with --inkscape PATH, or give the extensions folder with --dest DIR "
            "(on Linux usually ~/.config/inkscape/extensions)."
        ) from None
    except subprocess.TimeoutExpired:
        raise InstallError(f"'{inkscape} --user-data-directory' did not answer within {timeout:g} s; "
                           "pass the extensions folder with --dest DIR.") from None
    lines = [ln.strip() for ln in proc.stdout.splitlines() if ln.strip()]
    if proc.returncode != 0 or not lines:
        raise InstallError(
            f"'{inkscape} --user-data-directory' failed ({(proc.stderr or '').strip()[-300:] or proc.returncode}); "
            "pass the extensions folder with --dest DIR."
        )
    return Path(lines[-1]) / "extensions"


def install(dest: Path | None = None, *, inkscape: str = "inkscape", python: str | None = None,
            server: str | None = None, source: Path | None = None) -> Path:
    """Copy the extension to ``dest`` (default: Inkscape's user extensions folder)/lvss.

    python: the Python the extension uses to run ``lvss remote`` (default: this one);
    server: a default server address to record (the dialog and LVSS_SERVER still override it).
    Returns the folder the files went to.
    """
    src = Path(source) if source else extension_source()
    missing = [f for f in EXTENSION_FILES if not (src / f).is_file()]
    if missing:
        raise InstallError(f"{src} lacks {', '.join(missing)}; pass --source with a complete inkscape_ext folder.")
    base = Path(dest) if dest else user_extensions_dir(inkscape)
    target = base / SUBDIR
    try:
        target.mkdir(parents=True, exist_ok=True)
        for name in EXTENSION_FILES:
            shutil.copy2(src / name, target / name)
        os.chmod(target / "lvss_vectorize.py", 0o755)
        config = {"python": python or sys.executable}
        root = Path(__file__).resolve().parents[2]
        if root.name not in ("site-packages", "dist-packages"):
            # lvss runs from a source checkout: the extension puts it on the client's PYTHONPATH
            config["pythonpath"] = str(root)
        if server:
            config["server"] = server
        tmp = target / (CONFIG_NAME + ".tmp")
        tmp.write_text(json.dumps(config, indent=2) + "\n", encoding="utf-8")
        os.replace(tmp, target / CONFIG_NAME)
        _copy_client(target / ext_client.PACKAGE)
        _write_server_label(target / "lvss_vectorize.inx", config)
    except OSError as err:
        raise InstallError(f"Cannot write to {target} ({err.strerror}); choose another folder with --dest.") from None
    return target


def _copy_client(folder: Path) -> None:
    """The remote client (lvss.ext_client.BUNDLED) as the package ``folder`` (``_lvss``), replacing
    an older copy."""
    lvss_dir = Path(__file__).resolve().parents[1]
    shutil.rmtree(folder, ignore_errors=True)
    (folder / "_proto").mkdir(parents=True)
    (folder / "__init__.py").write_text(ext_client.BUNDLE_INIT, encoding="utf-8")
    for rel in ext_client.BUNDLED:
        shutil.copy2(lvss_dir / rel, folder / rel)


def _write_server_label(inx: Path, config: dict) -> None:
    """Put ``server_field_label(config)`` on the Server tab's address field of the installed dialog
    (.inx labels are static, so they are made for this installation)."""
    import re
    from xml.sax.saxutils import quoteattr

    label = ext_client.server_field_label(config)
    text = inx.read_text(encoding="utf-8")
    new, n = re.subn(r'(<param name="server" type="string"\s+gui-text=)"[^"]*"',
                     lambda m: m.group(1) + quoteattr(label), text)
    if n == 1:
        inx.write_text(new, encoding="utf-8")


def _add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--dest", type=Path, metavar="DIR",
                   help="extensions folder to install into (default: ask Inkscape: "
                        "`inkscape --user-data-directory`/extensions); files go to DIR/lvss")
    p.add_argument("--inkscape", default="inkscape", metavar="PROG", help="the Inkscape program (default: inkscape)")
    p.add_argument("--python", metavar="PY",
                   help="Python the extension runs `lvss remote` with (default: the one running this command)")
    p.add_argument("--server", metavar="HOST:PORT", help="default server address to record (default 127.0.0.1:50051)")
    p.add_argument("--source", type=Path, metavar="DIR", help=argparse.SUPPRESS)


def add_parser(subparsers) -> argparse.ArgumentParser:
    """Register ``install-inkscape-extension``; returns the new parser."""
    p = subparsers.add_parser("install-inkscape-extension", help="install the Inkscape extension",
                              description=DESCRIPTION)
    _add_arguments(p)
    p.set_defaults(func=run)
    return p


def run(args: argparse.Namespace) -> int:
    """Install; exit status 0, or 2 with a one-line error on stderr."""
    try:
        target = install(args.dest, inkscape=args.inkscape, python=args.python, server=args.server,
                         source=args.source)
    except InstallError as err:
        print(f"lvss install-inkscape-extension: error: {err}", file=sys.stderr)
        return 2
    print(f"Installed the lvss extension in {target}")
    print(f"It runs `lvss remote` with {args.python or sys.executable} when Inkscape's Python lacks grpcio.")
    print(f"With the Server tab's address empty it uses $LVSS_SERVER if set, else "
          f"{args.server or '127.0.0.1:50051'}.")
    print("Next: start the server (lvss serve), restart Inkscape, select a bitmap and choose "
          "Extensions > Images > Vectorize Bitmap (lvss)...")
    return 0


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="lvss install-inkscape-extension", description=DESCRIPTION)
    _add_arguments(p)
    return run(p.parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
