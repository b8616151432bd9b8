"""`edge models list | pull NAME | verify`: get a known-good model onto the station.

The catalogue is edge/classify/catalogue.py and the download edge/classify/download.py; this
module parses the flags, picks the model folder and prints (a progress line on a terminal, the
config lines to paste after a pull). The default folder is `models/` beside the configured
database ([storage] database: /var/lib/trailcam/models with the defaults), so the daemon's own
state folder holds its models. Exit codes: 0 ok, 1 download or check failed, 2 usage (unknown
name, a model that cannot be pulled, no checksum to check against).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import TextIO

from edge.classify import catalogue, download
from edge.cli.common import EXIT_FAILURE, EXIT_OK, EXIT_USAGE
from edge.cli.tables import aligned
from edge.config import load_config


def register(subparsers) -> None:
    """Add `edge models` (list, pull, verify) to the `edge` parser."""
    parser = subparsers.add_parser("models", help="list, download and check known-good detector and classifier models")
    sub = parser.add_subparsers(dest="models_command", metavar="ACTION", required=True)

    listing = sub.add_parser("list", help="the catalogue: name, kind, licence, checksum, whether it is pulled")
    _dir_flags(listing)
    listing.add_argument("--format", choices=["table", "json"], default="table", help="output format")
    listing.set_defaults(func=cmd_list)

    pull = sub.add_parser("pull", help="download a model, check its sha256, install it into the model folder")
    pull.add_argument("name", metavar="NAME", help="a name from `edge models list`")
    _dir_flags(pull)
    pull.add_argument("--sha256", type=_sha256, metavar="HEX",
                      help="the published digest of the one file the catalogue has no sha256 for")
    pull.add_argument("--trust-on-first-use", action="store_true",
                      help="accept a file the catalogue has no sha256 for and record the digest it arrived with")
    pull.add_argument("--force", action="store_true", help="replace the model folder when it is already there")
    pull.add_argument("--mirror", metavar="URL",
                      help=f"fetch every file as URL/<file name> (http(s):// or file://; default ${download.MIRROR_ENV}, "
                           "else the publisher's URLs)")
    pull.add_argument("--timeout", type=float, default=60.0, metavar="S",
                      help="seconds without data before giving up (default 60)")
    pull.set_defaults(func=cmd_pull)

    verify = sub.add_parser("verify", help="re-hash the pulled models against the catalogue")
    _dir_flags(verify)
    verify.set_defaults(func=cmd_verify)


def _dir_flags(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--dir", type=Path, metavar="DIR",
                        help="model folder (default: models/ beside [storage] database, /var/lib/trailcam/models)")
    parser.add_argument("--config", type=Path, help="TOML configuration to take [storage] database from")


def _sha256(text: str) -> str:
    try:
        return download.parse_sha256(text)
    except ValueError as error:
        raise argparse.ArgumentTypeError(str(error)) from None


def models_dir(args: argparse.Namespace) -> Path:
    """--dir, else `models/` beside the configured database."""
    if args.dir is not None:
        return args.dir
    return load_config(args.config).storage.database.parent / "models"


def config_lines(entry: catalogue.CatalogueEntry, folder: Path) -> list[str]:
    """The edge.toml lines that use a pulled model (paths quoted as TOML strings)."""
    if entry.kind == "names":
        from edge.classify.names import available_languages

        return ["[station]", f"language = \"en\"  # or one of: {', '.join(available_languages(folder))}",
                "[taxonomy]", f"names = {json.dumps(str(folder))}  # not needed in the default folder"]
    if entry.kind == "prior":  # the range model is a folder of two files ([prior] model)
        return ["[prior]", 'source = "birdnet"', f"model = {json.dumps(str(folder))}"]
    section = "[model]" if entry.kind == "classifier" else "[detector]"
    lines = [section]
    if entry.model_file:
        lines.append(f"path = {json.dumps(str(folder / entry.model_file))}")
    if entry.labels_file:
        lines.append(f"labels = {json.dumps(str(folder / entry.labels_file))}")
    return lines


class ProgressLine:
    """Download progress on stderr: one line rewritten in place on a terminal, else one line per
    file when it is complete (a journal or a log file gets no carriage returns)."""

    def __init__(self, stream: TextIO | None = None) -> None:
        self.stream = stream or sys.stderr
        self.tty = self.stream.isatty()
        self._shown = -1

    def __call__(self, label: str, done: int, total: int | None, finished: bool) -> None:
        amount = f"{done / 1e6:.1f} MB" + (f" of {total / 1e6:.1f} MB" if total else "")
        if finished:
            end = "\n"
            self._shown = -1
        elif not self.tty:
            return
        else:
            percent = int(100 * done / total) if total else done >> 20
            if percent == self._shown:
                return
            self._shown = percent
            end = ""
        prefix = "\r" if self.tty else ""
        share = f" ({100 * done // total}%)" if total else ""
        self.stream.write(f"{prefix}{label}: {amount}{share}{end}")
        self.stream.flush()


def _fail(message: str, code: int) -> int:
    for line in message.splitlines() or [""]:
        print(f"edge: {line}", file=sys.stderr)
    return code


def cmd_list(args: argparse.Namespace) -> int:
    folder = models_dir(args)
    if args.format == "json":
        items = [{"name": e.name, "kind": e.kind, "licence": e.licence, "description": e.description,
                  "homepage": e.homepage, "pullable": e.pullable, "verified": e.pullable and e.verified,
                  "pulled": (folder / e.name).is_dir(), "notes": e.notes,
                  "files": [{"url": f.url, "store_as": f.store_as, "sha256": f.sha256, "size": f.size,
                             "member": f.member, "download_name": f.download_name} for f in e.files]}
                 for e in catalogue.CATALOGUE]
        print(json.dumps({"models_dir": str(folder), "models": items}, indent=2))
        return EXIT_OK
    rows = [["name", "kind", "licence", "sha256", "pulled", "description"]]
    for e in catalogue.CATALOGUE:
        checksum = "export" if not e.pullable else ("published" if e.verified else "none (--sha256)")
        licence = e.licence if len(e.licence) <= 16 else e.licence.split(" ")[0] + " …"
        rows.append([e.name, e.kind, licence, checksum, "yes" if (folder / e.name).is_dir() else "no", e.description])
    print("\n".join(aligned(rows)))
    print(f"model folder: {folder}")
    return EXIT_OK


def cmd_pull(args: argparse.Namespace) -> int:
    try:
        entry = catalogue.find(args.name)
    except catalogue.UnknownModel as error:
        return _fail(str(error.args[0]), EXIT_USAGE)
    folder = models_dir(args)
    target = folder / entry.name
    if entry.pullable and target.exists() and not args.force:
        result = download.verify_entry(entry, target)
        if not result.ok:
            return _fail(f"{target} is there but fails its check: {result.message}; --force downloads it again",
                         EXIT_FAILURE)
        print(f"{entry.name}: already pulled and verified: {target}")
        if entry.licence_notice:
            print(f"licence: {entry.licence_notice}")
        print("\n".join(config_lines(entry, target)))
        return EXIT_OK
    unverified = [f.store_as for f in entry.files if not f.sha256]
    given: dict[str, str] = {}
    if args.sha256 is not None:
        if len(unverified) != 1:
            return _fail(f"{entry.name}: --sha256 needs exactly one file without a catalogue digest "
                         f"(this model has {len(unverified)})", EXIT_USAGE)
        given = {unverified[0]: args.sha256}
    try:
        installed = download.pull(entry, folder, mirror=args.mirror, sha256=given,
                                  trust_on_first_use=args.trust_on_first_use, force=args.force,
                                  progress=ProgressLine(), timeout_s=args.timeout)
    except download.PullRefused as error:
        return _fail(str(error), EXIT_USAGE)
    except download.ModelDownloadError as error:
        return _fail(str(error), EXIT_FAILURE)
    record = download.read_record(installed)
    trusted = [name for name, item in record.items() if item.get("trust") == "first-use"]
    for name, item in record.items():
        if name in trusted:
            print(f"edge: WARNING: {entry.name}/{name} was NOT checked against a published sha256: trusted on "
                  f"first use, its digest {item.get('sha256')} is recorded in {installed / download.RECORD_NAME}; "
                  f"compare it with the publisher's before relying on it", file=sys.stderr)
    checked = "pulled, NOT verified" if trusted else "pulled and verified"
    print(f"{entry.name}: {checked} ({entry.licence}): {installed}")
    if entry.licence_notice:
        print(f"licence: {entry.licence_notice}")
    if entry.convert and not entry.model_file:
        print(f"these are PyTorch weights: export the .onnx the edge runs into {installed} (docs/models.md, "
              f"\"MegaDetector\"):\n  {entry.convert}")
        print("then add to edge.toml:")
        print("\n".join(config_lines(entry, installed) + [f"path = {json.dumps(str(installed))}  # the folder of the .onnx",
                                                          'bird_labels = ["animal"]']))
        return EXIT_OK
    print("add to edge.toml:")
    print("\n".join(config_lines(entry, installed)))
    return EXIT_OK


def cmd_verify(args: argparse.Namespace) -> int:
    folder = models_dir(args)
    results = download.verify(folder)
    if not results:
        print(f"no pulled models in {folder}")
        return EXIT_OK
    rows = [["name", "result", "detail"]] + [[r.name, "ok" if r.ok else "FAILED", r.message] for r in results]
    print("\n".join(aligned(rows)))
    return EXIT_OK if all(r.ok for r in results) else EXIT_FAILURE
