#!/usr/bin/env python3
"""Build the loc2vec QGIS plugin zip, or install the plugin into a QGIS plugins folder.

The file lists come from pb_tool.cfg (pb_tool itself is not needed). The plugin folder is

    loc2vec/__init__.py            a copy of loc2vec_qgis/__init__.py (classFactory)
    loc2vec/metadata.txt
    loc2vec/resources/icon.svg
    loc2vec/resources/models/loc2vec-default.onnx      the shipped encoder
    loc2vec/resources/processing/*.model3              the shipped Processing models (scripts/make_model3.py)
    loc2vec/loc2vec_qgis/...       the plugin code
    loc2vec/loc2vec_engine/...     the engine it drives

Usage:
    python scripts/build_plugin.py                          # -> dist/loc2vec.zip
    python scripts/build_plugin.py --out /tmp/loc2vec.zip
    python scripts/build_plugin.py --install ~/.local/share/QGIS/QGIS3/profiles/default/python/plugins
    python scripts/build_plugin.py --install DIR --symlink  # links to the checkout, for development
    python scripts/build_plugin.py --list                   # print what goes into the plugin
"""

from __future__ import annotations

import argparse
import configparser
import fnmatch
import os
import re
import shutil
import sys
import time
import zipfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
FILE_KEYS = ("python_files", "main_dialog", "compiled_ui_files", "resource_files", "extras")


class BuildError(Exception):
    pass


def read_config(path: Path) -> configparser.ConfigParser:
    if not path.is_file():
        raise BuildError(f"{path} not found")
    cfg = configparser.ConfigParser(interpolation=None)
    cfg.read(path, encoding="utf-8")
    return cfg


def _words(cfg, section, key) -> list[str]:
    return cfg.get(section, key, fallback="").split()


def plugin_name(cfg) -> str:
    name = cfg.get("plugin", "name", fallback="").strip()
    if not name:
        raise BuildError("pb_tool.cfg: [plugin] name is empty")
    return name


def _excluded(rel: Path, patterns: list[str]) -> bool:
    return any(fnmatch.fnmatch(part, pat) for part in rel.parts for pat in patterns)


def plugin_files(cfg, root: Path = REPO) -> list[tuple[Path, str, str]]:
    """(source, path inside the plugin folder, top-level entry it belongs to), sorted by path."""
    exclude = _words(cfg, "bundle", "exclude")
    out: dict[str, tuple[Path, str]] = {}
    root_init = cfg.get("bundle", "root_init", fallback="").strip()
    if root_init:
        out["__init__.py"] = (root / root_init, "__init__.py")
    for key in FILE_KEYS:
        for rel in _words(cfg, "files", key):
            out[rel] = (root / rel, Path(rel).parts[0])
    for d in _words(cfg, "files", "extra_dirs"):
        top = root / d
        if not top.is_dir():
            raise BuildError(f"pb_tool.cfg: extra_dirs entry {d} is not a folder")
        for src in sorted(top.rglob("*")):
            rel = src.relative_to(root)
            if src.is_file() and not _excluded(rel, exclude):
                out[rel.as_posix()] = (src, d)
    missing = [str(src) for src, _ in out.values() if not src.is_file()]
    if missing:
        raise BuildError("files listed in pb_tool.cfg are missing: " + ", ".join(missing))
    if "metadata.txt" not in out or "__init__.py" not in out:
        raise BuildError("pb_tool.cfg must give metadata.txt (extras) and [bundle] root_init")
    return [(src, rel, top) for rel, (src, top) in sorted(out.items())]


def check_versions(root: Path = REPO) -> str:
    """metadata.txt's version must be the engine's __version__; returns it."""
    meta = configparser.ConfigParser(interpolation=None)
    meta.read(root / "metadata.txt", encoding="utf-8")
    version = meta.get("general", "version", fallback="")
    init = (root / "loc2vec_engine" / "__init__.py").read_text(encoding="utf-8")
    engine = re.search(r'^__version__\s*=\s*["\']([^"\']+)', init, re.M)
    if engine and engine.group(1) != version:
        raise BuildError(f"metadata.txt version {version} != loc2vec_engine.__version__ {engine.group(1)}")
    return version


def build_zip(out: Path, cfg, root: Path = REPO) -> Path:
    """Write the plugin zip (entries under ``<name>/``, sorted, fixed timestamps: reproducible)."""
    name = plugin_name(cfg)
    files = plugin_files(cfg, root)
    epoch = int(os.environ.get("SOURCE_DATE_EPOCH", "315532800"))  # default 1980-01-01, zip's first day
    stamp = time.gmtime(max(epoch, 315532800))[:6]
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(out.name + ".part")
    with zipfile.ZipFile(tmp, "w", zipfile.ZIP_DEFLATED) as zf:
        dirs = sorted({f"{name}/"} | {f"{name}/{p}/" for _, rel, _ in files for p in _parents(rel)})
        for d in dirs:
            info = zipfile.ZipInfo(d, stamp)
            info.external_attr = (0o40755 << 16) | 0x10
            zf.writestr(info, b"")
        for src, rel, _ in files:
            info = zipfile.ZipInfo(f"{name}/{rel}", stamp)
            info.external_attr = 0o100644 << 16
            info.compress_type = zipfile.ZIP_DEFLATED
            zf.writestr(info, src.read_bytes())
    os.replace(tmp, out)
    return out


def _parents(rel: str) -> list[str]:
    parts = rel.split("/")[:-1]
    return ["/".join(parts[: i + 1]) for i in range(len(parts))]


def install(plugins_dir: Path, cfg, root: Path = REPO, symlink: bool = False) -> Path:
    """Put the plugin folder into ``plugins_dir`` (replacing an earlier loc2vec install)."""
    name = plugin_name(cfg)
    files = plugin_files(cfg, root)
    plugins_dir.mkdir(parents=True, exist_ok=True)
    target = plugins_dir / name
    _remove_old(target, name)
    target.mkdir()
    if not symlink:
        for src, rel, _ in files:
            dst = target / rel
            dst.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, dst)
        return target
    # Development install: link files, and whole folders for extra_dirs, back to the checkout.
    linked_dirs = set(_words(cfg, "files", "extra_dirs"))
    for d in sorted(linked_dirs):
        (target / d).symlink_to((root / d).resolve(), target_is_directory=True)
    for src, rel, top in files:
        if top in linked_dirs and rel != "__init__.py":
            continue
        dst = target / rel
        dst.parent.mkdir(parents=True, exist_ok=True)
        dst.symlink_to(src.resolve())
    return target


def _remove_old(target: Path, name: str) -> None:
    if target.is_symlink() or target.is_file():
        target.unlink()
    elif target.is_dir():
        meta = configparser.ConfigParser(interpolation=None)
        try:
            meta.read(target / "metadata.txt", encoding="utf-8")
        except configparser.Error:
            pass
        if meta.get("general", "name", fallback=None) != name and any(target.iterdir()):
            raise BuildError(f"{target} exists and is not a {name} plugin: not replacing it")
        shutil.rmtree(target)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--config", type=Path, default=REPO / "pb_tool.cfg", help="pb_tool.cfg to read")
    ap.add_argument("--out", type=Path, default=None, help="zip to write (default dist/<name>.zip)")
    ap.add_argument("--install", type=Path, metavar="PLUGINS_DIR", help="install into this plugins folder instead")
    ap.add_argument("--symlink", action="store_true", help="with --install: link to the checkout instead of copying")
    ap.add_argument("--list", action="store_true", help="print the plugin's files and exit")
    args = ap.parse_args(argv)
    try:
        cfg = read_config(args.config)
        version = check_versions(REPO)
        name = plugin_name(cfg)
        if args.list:
            for _, rel, _ in plugin_files(cfg):
                print(f"{name}/{rel}")
        elif args.install:
            target = install(args.install.expanduser(), cfg, symlink=args.symlink)
            print(f"installed {name} {version} into {target}" + (" (symlinks)" if args.symlink else ""))
        else:
            out = build_zip(args.out or REPO / "dist" / f"{name}.zip", cfg)
            print(f"wrote {out} ({name} {version}, {len(plugin_files(cfg))} files)")
    except BuildError as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
