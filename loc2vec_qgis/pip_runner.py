"""Run an ``install_plan.Plan``'s pip: cancellable, and all-or-nothing for the plugin's package folder (no Qt).

pip installs into a fresh staging folder next to the target (same file system, so the final moves are
renames); pip's temporary files go there too (``TMPDIR``). Only when pip has exited 0 are the staged
entries moved into the target, one rename each, so a package is either there whole or not at all.
Cancel kills pip's whole process group and deletes the staging folder: the target is never touched by
an unfinished pip, which ``pip --target`` alone does not promise (it moves its own temporary folder into
the target at the end, and a kill during that move leaves a part of it).

Before the move, distributions that QGIS already imports in the same version (the numpy that the
constraint pinned, which ``--target`` downloads again) are dropped from the staging folder: a second copy
would only be shadowed. Other ones that QGIS has in another version are kept, and reported
(QGIS's copy comes first on ``sys.path``).
"""

from __future__ import annotations

import importlib.metadata
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
from dataclasses import dataclass, field
from pathlib import Path

from .install_plan import Plan


@dataclass
class Outcome:
    code: int | None  # pip's exit status (None: not started)
    output: str = ""
    cancelled: bool = False
    installed: list[str] = field(default_factory=list)  # "name version", moved into the target
    dropped: list[str] = field(default_factory=list)  # same version as QGIS's own: not copied
    shadowed: list[str] = field(default_factory=list)  # "name X (QGIS has Y, which is used)"
    problem: str = ""
    fix: str = ""

    @property
    def ok(self) -> bool:
        return self.code == 0 and not self.cancelled and not self.problem


def _norm(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def explain_failure(output: str, plan: Plan) -> tuple[str, str]:
    """(problem, fix) from pip's output: a numpy conflict, a package pip cannot find, or pip's last error."""
    lines = [ln.strip() for ln in output.splitlines() if ln.strip()]
    if "ResolutionImpossible" in output or "conflicting dependencies" in output:
        cause = []
        if "The conflict is caused by:" in lines:
            for ln in lines[lines.index("The conflict is caused by:") + 1:]:
                if ln.startswith("To fix") or ln.startswith("ERROR"):
                    break
                cause.append(ln)
        because = "; ".join(cause) or (lines[-1] if lines else "pip found conflicting requirements")
        if "numpy" in because and plan.numpy_version:
            return (f"pip installed nothing: a package needs another numpy than QGIS's own {plan.numpy_version} "
                    f"({because})",
                    f"QGIS's numpy is kept on purpose (its GDAL bindings are built for it). Install an older "
                    f"release of that package that supports numpy {plan.numpy_version}, or a QGIS built with a "
                    "newer numpy")
        return f"pip installed nothing: conflicting requirements ({because})", "install the packages by hand: " + \
            plan.command_line()
    missing = [ln for ln in lines if "No matching distribution found for" in ln]
    if missing:
        name = missing[-1].split("found for", 1)[1].strip()
        return (f"pip found no {name} for this Python (offline, behind a proxy, or no wheel for this platform)",
                "connect to the internet (or set pip's proxy) and press Install again; by hand: " + plan.command_line())
    errors = [ln for ln in lines if ln.startswith("ERROR")] or lines[-1:] or ["(no output)"]
    return f"pip failed: {errors[-1][:300]}", "run it yourself to see all of its output: " + plan.command_line()


class PipRun:
    """One install: ``run()`` blocks (call it from a worker thread); ``cancel()`` may come from any thread."""

    def __init__(self, plan: Plan, env: dict | None = None):
        self.plan = plan
        self.env = dict(os.environ if env is None else env)
        self.proc: subprocess.Popen | None = None
        self.staging: Path | None = None
        self.command: list[str] = []
        self.last_line = ""
        self._cancelled = threading.Event()
        self._lock = threading.Lock()

    @property
    def cancelled(self) -> bool:
        return self._cancelled.is_set()

    def cancel(self) -> None:
        """Stop pip now: its process group gets SIGINT (pip removes its temporary files), SIGKILL 5 s later
        if it still runs. Returns at once (it is called from QGIS's main thread)."""
        self._cancelled.set()
        with self._lock:
            proc = self.proc
        if proc is None or proc.poll() is not None:
            return
        if sys.platform == "win32":
            proc.kill()
            return
        _signal_group(proc, signal.SIGINT)
        timer = threading.Timer(5, lambda: proc.poll() is None and _signal_group(proc, signal.SIGKILL))
        timer.daemon = True
        timer.start()

    def run(self, on_line=None) -> Outcome:
        """pip into staging, then the move; ``on_line(str)`` gets each line of pip's output."""
        target = Path(self.plan.target)
        target.parent.mkdir(parents=True, exist_ok=True)
        self.staging = Path(tempfile.mkdtemp(prefix=f".{target.name}-staging-", dir=target.parent))
        try:
            return self._run(target, on_line)
        finally:
            shutil.rmtree(self.staging, ignore_errors=True)

    def _run(self, target: Path, on_line) -> Outcome:
        site, tmp = self.staging / "site", self.staging / "tmp"
        tmp.mkdir()
        constraints = self.staging / "constraints.txt"
        constraints.write_text(self.plan.constraints())
        cmd = self.command = self.plan.command(site, constraints)
        env = {**self.env, "TMPDIR": str(tmp), "TEMP": str(tmp), "TMP": str(tmp), "PYTHONUNBUFFERED": "1"}
        lines = []
        with self._lock:
            if self.cancelled:
                return Outcome(None, cancelled=True)
            self.proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                                         env=env, start_new_session=sys.platform != "win32")
        for line in self.proc.stdout:
            lines.append(line)
            self.last_line = line.rstrip()
            if on_line is not None:
                on_line(self.last_line)
        code = self.proc.wait()
        out = Outcome(code, "".join(lines), cancelled=self.cancelled)
        if out.cancelled:
            return out
        if code != 0:
            out.problem, out.fix = explain_failure(out.output, self.plan)
            return out
        self._drop_duplicates(site, out)
        self._move(site, target, out)
        return out

    # ---- after pip -------------------------------------------------------------------------------
    def _dists(self, folder: Path) -> list[importlib.metadata.Distribution]:
        return list(importlib.metadata.distributions(path=[str(folder)]))

    def _drop_duplicates(self, site: Path, out: Outcome) -> None:
        """Drop what QGIS already imports in the same version; note what it has in another version."""
        target = str(Path(self.plan.target))
        others = [p for p in sys.path if p and os.path.abspath(p) != os.path.abspath(target)]
        have = {}
        for dist in importlib.metadata.distributions(path=others):
            have.setdefault(_norm(dist.metadata["Name"] or ""), dist.version)  # first on sys.path wins
        for dist in self._dists(site):
            name, version = dist.metadata["Name"] or "", dist.version
            theirs = have.get(_norm(name))
            if theirs == version:
                _remove_dist(site, dist)
                out.dropped.append(f"{name} {version}")
            elif theirs is not None:
                out.shadowed.append(f"{name} {version} (QGIS has {theirs}, which is the one used)")

    def _move(self, site: Path, target: Path, out: Outcome) -> None:
        """Each staged entry renamed into the target; an older copy of the same distribution goes first."""
        target.mkdir(parents=True, exist_ok=True)
        names = {_norm(d.metadata["Name"] or "") for d in self._dists(site)}
        for old in self._dists(target):  # an older version's files would mix with the new ones
            if _norm(old.metadata["Name"] or "") in names:
                _remove_dist(target, old)
        out.installed = [f"{d.metadata['Name']} {d.version}" for d in self._dists(site)]
        for entry in sorted(site.iterdir()):
            dest = target / entry.name
            if entry.is_dir() and dest.is_dir() and not entry.name.endswith((".dist-info", ".egg-info")):
                if entry.name in ("bin", "Scripts", "share", "include"):  # shared folders: merge
                    shutil.copytree(entry, dest, dirs_exist_ok=True)
                    continue
                shutil.rmtree(dest)
            elif dest.exists() or dest.is_symlink():
                shutil.rmtree(dest) if dest.is_dir() else dest.unlink()
            os.replace(entry, dest)


def _signal_group(proc: subprocess.Popen, sig) -> None:
    try:
        os.killpg(proc.pid, sig)  # the group: pip and any build process it started
    except (ProcessLookupError, PermissionError):
        pass


def _remove_dist(root: Path, dist: importlib.metadata.Distribution) -> None:
    """Delete the files a distribution's RECORD lists under ``root`` (then its emptied folders)."""
    root = root.resolve()
    folders = set()
    for f in dist.files or []:
        path = (root / f).resolve()
        if root not in path.parents:  # a RECORD entry outside the folder (../bin/x): not ours to delete
            continue
        folders.update(p for p in path.parents if root in p.parents)
        if path.is_file() or path.is_symlink():
            path.unlink()
    for folder in sorted(folders, key=lambda p: len(p.parts), reverse=True):
        shutil.rmtree(folder / "__pycache__", ignore_errors=True)
        try:
            folder.rmdir()
        except OSError:
            pass  # not empty: another distribution's files
