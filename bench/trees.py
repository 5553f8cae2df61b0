"""Another revision of lvss beside this one, for the benchmarks that time or compare two trees side by
side (``--against`` / ``--check``): a directory holding lvss/, or a git revision of this repository,
checked out once as a detached worktree under the temporary folder and reused by every benchmark."""
from __future__ import annotations

import subprocess
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def other_tree(rev_or_dir: str, flag: str, need_server: bool = False) -> Path:
    """The source tree ``rev_or_dir`` names (a directory with ``lvss/``, and ``server/`` where
    ``need_server``; else a git revision). Exits with a one-line message naming ``flag`` otherwise."""
    p = Path(rev_or_dir)
    if (p / "lvss" / "__init__.py").is_file() and (not need_server or (p / "server").is_dir()):
        return p.resolve()
    sha = subprocess.run(["git", "-C", str(ROOT), "rev-parse", "--verify", f"{rev_or_dir}^{{commit}}"],
                         capture_output=True, text=True)
    if sha.returncode != 0:
        held = "lvss/ and server/" if need_server else "lvss/"
        raise SystemExit(f"{flag}: {rev_or_dir!r} is neither a directory holding {held} nor a git revision")
    sha = sha.stdout.strip()
    dest = Path(tempfile.gettempdir()) / f"lvss-bench-{sha[:12]}"
    if not (dest / "lvss").is_dir():
        subprocess.run(["git", "-C", str(ROOT), "worktree", "add", "--detach", str(dest), sha], check=True,
                       capture_output=True)
    return dest
