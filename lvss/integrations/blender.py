"""``lvss build-blender-extension``: write the installable .zip of the Blender extension.

The zip holds the extension (``blender_ext/``), a copy of the remote client both extensions share
(``lvss/ext_client.py`` with ``client.py``, ``messages.py`` and ``_proto``, as the subpackage
``_lvss``), and the wheels Blender's Python needs to talk gRPC (grpcio, protobuf and what they
require) for the chosen platforms, listed in the zip's ``blender_manifest.toml`` so that Blender's
extension system installs them. Wheels come from PyPI through ``pip download`` (for Blender's Python
version, not this one's), or from ``--wheel-dir``.
With ``--no-wheels`` the zip holds no wheels and the extension reaches the server through
``lvss remote`` run by a configured Python.

``add_parser(subparsers)`` registers the subcommand on the ``lvss`` CLI (handler in ``func``);
``main(argv)`` runs it standalone (``python -m lvss.integrations.blender``).
"""
from __future__ import annotations

import argparse
import os
import platform as _platform
import re
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

from ..ext_client import BUNDLE_INIT, BUNDLED

DESCRIPTION = ("Write the installable .zip of the lvss Blender extension (File > Import > Layered SVG (lvss), "
               "Object > Vectorize Image (lvss)), with the gRPC wheels for Blender's Python.")
BLENDER_PYTHON = "3.11"  # the Python of Blender 4.2 to 4.5
# pip platform tags per Blender extension platform
PLATFORM_TAGS = {
    "linux-x64": ("manylinux_2_28_x86_64", "manylinux_2_17_x86_64", "manylinux2014_x86_64"),
    "linux-arm64": ("manylinux_2_28_aarch64", "manylinux_2_17_aarch64", "manylinux2014_aarch64"),
    "macos-x64": ("macosx_11_0_x86_64", "macosx_10_9_x86_64", "macosx_11_0_universal2", "macosx_10_9_universal2"),
    "macos-arm64": ("macosx_11_0_arm64", "macosx_11_0_universal2", "macosx_10_9_universal2"),
    "windows-x64": ("win_amd64",),
    "windows-arm64": ("win_arm64",),
}
REQUIRED = ("grpcio", "protobuf")  # the distributions the client imports (grpc, google.protobuf)
MINIMUM = {"grpcio": "1.85.1", "protobuf": "7.35.1"}  # the versions the generated stubs were made with
# the remote client and what it imports (lvss.ext_client.BUNDLED), and the SVG reader the importer
# uses (svg_read.py, standard library only), carried as the subpackage _lvss
CLIENT_FILES = BUNDLED + ("svg_read.py",)


class BuildError(Exception):
    """The extension cannot be built; the message says what to do."""


def current_platform() -> str:
    """This machine as a Blender extension platform name (linux-x64, macos-arm64, windows-x64...)."""
    system = {"linux": "linux", "darwin": "macos", "win32": "windows"}.get(sys.platform)
    machine = _platform.machine().lower()
    arch = {"x86_64": "x64", "amd64": "x64", "aarch64": "arm64", "arm64": "arm64"}.get(machine)
    if system is None or arch is None:
        raise BuildError(f"Blender extensions have no platform for {sys.platform}/{machine}; pass --platform "
                         f"({', '.join(PLATFORM_TAGS)}) or --no-wheels.")
    return f"{system}-{arch}"


def extension_source() -> Path:
    """The ``blender_ext`` folder of this lvss (inside the installed package, or a source checkout)."""
    here = Path(__file__).resolve().parents[1]
    for cand in (here / "blender_ext", here.parent / "blender_ext"):
        if (cand / "blender_manifest.toml").is_file() and (cand / "__init__.py").is_file():
            return cand
    raise BuildError("The Blender extension's files (blender_ext/blender_manifest.toml) are not part of this "
                     "lvss installation; reinstall lvss (pip install .) or run this command from a source checkout.")


def _manifest_value(text: str, key: str) -> str:
    m = re.search(rf'^\s*{key}\s*=\s*"([^"]*)"', text, re.M)
    if not m:
        raise BuildError(f"blender_manifest.toml has no {key} = \"...\" line")
    return m.group(1)


def _installed_version(dist: str) -> str | None:
    try:
        from importlib.metadata import version

        return version(dist)
    except Exception:  # noqa: BLE001  not installed
        return None


def _version_tuple(v: str) -> tuple:
    return tuple(int(p) for p in re.findall(r"\d+", v)[:3])


def requirements() -> list[str]:
    """grpcio and protobuf pinned to this environment's versions (the ones lvss is tested with),
    or to a range from the stubs' minimum when they are not installed here."""
    out = []
    for dist in REQUIRED:
        have = _installed_version(dist)
        if have and _version_tuple(have) >= _version_tuple(MINIMUM[dist]):
            out.append(f"{dist}=={have}")
        elif dist == "protobuf":
            out.append(f"protobuf>={MINIMUM[dist]},<8")
        else:
            out.append(f"{dist}>={MINIMUM[dist]}")
    return out


def _wheel_platform_ok(name: str, tags: tuple) -> bool:
    plat = name[:-4].split("-")[-1]
    return plat == "any" or any(t in plat.split(".") for t in tags)


def download_wheels(platforms: list[str], dest: Path, python_version: str = BLENDER_PYTHON) -> list[Path]:
    """``pip download`` grpcio, protobuf and their requirements for each platform into ``dest``."""
    reqs = requirements()
    abi = "cp" + python_version.replace(".", "")
    for plat in platforms:
        cmd = [sys.executable, "-m", "pip", "download", "--disable-pip-version-check", "--only-binary=:all:",
               "--python-version", python_version, "--implementation", "cp", "--abi", abi, "--abi", "abi3",
               "--abi", "none", "-d", str(dest), *reqs]
        for tag in PLATFORM_TAGS[plat]:
            cmd += ["--platform", tag]
        cmd += ["--platform", "any"]
        try:
            proc = subprocess.run(cmd, capture_output=True, text=True, stdin=subprocess.DEVNULL, timeout=900)
        except subprocess.TimeoutExpired:
            raise BuildError("pip download did not finish within 15 minutes; check the network, or pass "
                             "--wheel-dir with wheels downloaded beforehand") from None
        if proc.returncode != 0:
            tail = (proc.stderr or proc.stdout).strip().splitlines()[-3:]
            raise BuildError(f"pip could not download the wheels for {plat} ({' '.join(reqs)}): "
                             f"{' | '.join(tail)}. Check the network or the package index, or pass --wheel-dir "
                             "DIR with the wheels, or --no-wheels to rely on `lvss remote`.")
    return sorted(dest.glob("*.whl"))


def _python_ok(pytag: str, abitag: str, python_version: str) -> bool:
    """Whether a wheel's python and ABI tags fit CPython ``python_version`` (e.g. "3.11")."""
    want = tuple(int(p) for p in python_version.split("."))
    for tag in pytag.split("."):
        if tag in ("py3", "py2.py3") or (tag.startswith("py3") and abitag == "none"):
            return True
        m = re.fullmatch(r"cp(\d)(\d+)", tag)
        if m and ((int(m.group(1)), int(m.group(2))) == want or
                  (abitag == "abi3" and (int(m.group(1)), int(m.group(2))) <= want)):
            return True
    return False


def pick_wheels(folder: Path, platforms: list[str], python_version: str = BLENDER_PYTHON) -> list[Path]:
    """The wheels in ``folder`` that fit Blender's Python on ``platforms``; errors if grpcio or
    protobuf is missing for one of them."""
    if not folder.is_dir():
        raise BuildError(f"--wheel-dir {folder} is not a folder")
    chosen: list[Path] = []
    for plat in platforms:
        tags = PLATFORM_TAGS[plat]
        found = set()
        for whl in sorted(folder.glob("*.whl")):
            parts = whl.name[:-4].split("-")
            if len(parts) not in (5, 6):
                continue
            pytag, abitag = parts[-3], parts[-2]
            if not (_wheel_platform_ok(whl.name, tags) and _python_ok(pytag, abitag, python_version)):
                continue
            if whl not in chosen:
                chosen.append(whl)
            found.add(parts[0].lower().replace("_", "-"))
        missing = [d for d in REQUIRED if d not in found]
        if missing:
            raise BuildError(f"{folder} has no {' or '.join(missing)} wheel for {plat} and Python {python_version}; "
                             f"download them with: pip download {' '.join(requirements())} --only-binary=:all: "
                             f"--python-version {python_version} --platform {tags[0]} -d {folder}")
    return chosen


def manifest_text(source: str, platforms: list[str], wheels: list[str]) -> str:
    """The source manifest with ``platforms`` and ``wheels`` added before its first table."""
    lines = source.splitlines()
    for key in ("platforms", "wheels"):
        if any(re.match(rf"\s*{key}\s*=", ln) for ln in lines):
            raise BuildError(f"blender_ext/blender_manifest.toml must not set {key}; the build adds it")
    first_table = next((i for i, ln in enumerate(lines) if ln.lstrip().startswith("[")), len(lines))
    extra = []
    if platforms:
        extra.append("platforms = [" + ", ".join(f'"{p}"' for p in platforms) + "]")
    if wheels:
        extra.append("wheels = [")
        extra += [f'  "./wheels/{w}",' for w in wheels]
        extra.append("]")
    if extra:
        extra.append("")
    return "\n".join(lines[:first_table] + extra + lines[first_table:]) + "\n"


def _extension_files(src: Path) -> list[Path]:
    """The extension's own Python files (no caches, no docs; the manifest is written separately)."""
    return [p for p in sorted(src.rglob("*.py")) if "__pycache__" not in p.parts and "_lvss" not in p.parts]


def build(out_dir: Path, *, platforms: list[str] | None = None, wheel_dir: Path | None = None,
          wheels: bool = True, python_version: str = BLENDER_PYTHON, source: Path | None = None) -> Path:
    """Write the extension .zip into ``out_dir``; returns its path."""
    src = Path(source) if source else extension_source()
    manifest_src = (src / "blender_manifest.toml").read_text(encoding="utf-8")
    ext_id, version = _manifest_value(manifest_src, "id"), _manifest_value(manifest_src, "version")
    plats = list(dict.fromkeys(platforms or ([current_platform()] if wheels else [])))
    unknown = [p for p in plats if p not in PLATFORM_TAGS]
    if unknown:
        raise BuildError(f"unknown platform {', '.join(unknown)}; choose from {', '.join(PLATFORM_TAGS)}")
    if not re.fullmatch(r"3\.\d+", python_version):
        raise BuildError(f"--python-version must look like 3.11, got {python_version!r}")
    lvss_dir = Path(__file__).resolve().parents[1]
    missing = [f for f in CLIENT_FILES if not (lvss_dir / f).is_file()]
    if missing:
        raise BuildError(f"this lvss lacks {', '.join(missing)}; regenerate the stubs with python proto/generate.py")
    out_dir = Path(out_dir)
    if out_dir.exists() and not out_dir.is_dir():
        raise BuildError(f"output {out_dir} exists and is not a folder")
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise BuildError(f"cannot create the output folder {out_dir} ({err.strerror})") from None
    with tempfile.TemporaryDirectory(prefix="lvss-blender-build-") as tmp:
        whls: list[Path] = []
        if wheels:
            if wheel_dir is not None:
                whls = pick_wheels(Path(wheel_dir), plats, python_version)
            else:
                dl = Path(tmp) / "wheels"
                dl.mkdir()
                download_wheels(plats, dl, python_version)
                whls = pick_wheels(dl, plats, python_version)
        suffix = ("-" + "-".join(p.replace("-", "_") for p in plats)) if wheels else ""
        target = out_dir / f"{ext_id}-{version}{suffix}.zip"
        partial = out_dir / (target.name + ".part")
        try:
            with zipfile.ZipFile(partial, "w", zipfile.ZIP_DEFLATED) as zf:
                zf.writestr("blender_manifest.toml",
                            manifest_text(manifest_src, plats if wheels else [], [w.name for w in whls]))
                for f in _extension_files(src):
                    zf.write(f, f.relative_to(src).as_posix())
                zf.writestr("_lvss/__init__.py", BUNDLE_INIT)
                for rel in CLIENT_FILES:
                    zf.write(lvss_dir / rel, f"_lvss/{rel}")
                for w in whls:
                    zf.write(w, f"wheels/{w.name}", compress_type=zipfile.ZIP_STORED)
            os.replace(partial, target)
        except OSError as err:
            partial.unlink(missing_ok=True)
            raise BuildError(f"cannot write {target} ({err.strerror or err})") from None
    return target


def _add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("-o", "--output", type=Path, default=Path("dist"), metavar="DIR",
                   help="folder to write the .zip into (default: dist)")
    p.add_argument("--platform", action="append", choices=sorted(PLATFORM_TAGS), metavar="PLATFORM",
                   help="Blender platform to bundle wheels for (repeatable; default: this machine's). "
                        f"One of: {', '.join(PLATFORM_TAGS)}")
    p.add_argument("--wheel-dir", type=Path, metavar="DIR",
                   help="take the grpcio/protobuf wheels from DIR instead of downloading them with pip")
    p.add_argument("--no-wheels", action="store_true",
                   help="bundle no wheels: the extension then runs `lvss remote` with a configured Python")
    p.add_argument("--python-version", default=BLENDER_PYTHON, metavar="X.Y",
                   help=f"Python version of the target Blender (default {BLENDER_PYTHON}, Blender 4.2-4.5)")
    p.add_argument("--source", type=Path, metavar="DIR", help=argparse.SUPPRESS)


def add_parser(subparsers) -> argparse.ArgumentParser:
    """Register ``build-blender-extension``; returns the new parser."""
    p = subparsers.add_parser("build-blender-extension", help="write the Blender extension's .zip",
                              description=DESCRIPTION)
    _add_arguments(p)
    p.set_defaults(func=run)
    return p


def run(args: argparse.Namespace) -> int:
    """Build; exit status 0, or 2 with a one-line error on stderr."""
    if args.no_wheels and (args.wheel_dir or args.platform):
        print("lvss build-blender-extension: error: --no-wheels cannot be combined with --wheel-dir or "
              "--platform", file=sys.stderr)
        return 2
    try:
        target = build(args.output, platforms=args.platform, wheel_dir=args.wheel_dir, wheels=not args.no_wheels,
                       python_version=args.python_version, source=args.source)
    except BuildError as err:
        print(f"lvss build-blender-extension: error: {err}", file=sys.stderr)
        return 2
    with zipfile.ZipFile(target) as zf:
        bundled = [n.split("/", 1)[1] for n in zf.namelist() if n.startswith("wheels/")]
    print(f"Wrote {target}" + (f" with {len(bundled)} wheels: {', '.join(bundled)}" if bundled else
                               " without wheels (the extension will run `lvss remote`)"))
    print("Install it in Blender 4.2 or newer: Edit > Preferences > Get Extensions > (menu at the top right) "
          "> Install from Disk..., then choose this file.")
    return 0


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="lvss build-blender-extension", description=DESCRIPTION)
    _add_arguments(p)
    return run(p.parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
