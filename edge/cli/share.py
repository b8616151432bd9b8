"""`edge export ebird` and `edge export inaturalist`: the station's sightings for citizen science.

The work is in edge/exports (sightings.py, ebird.py, inaturalist.py, exif.py); this module
parses the flags and prints. Exit codes: 0 ok, 2 usage (an output in the way, missing
coordinates or eBird's country/state, a bad period or camera; nothing was written).
Nothing is uploaded: the files are for the portals' own import tools.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from edge.cli.common import EXIT_OK
from edge.cli.ecology import _db_flags, _inputs, _period_flags, _usage

REVIEWED = ("by default only species a person confirmed or corrected (the visit, or one of its birds, in the web "
            "app); --include-unreviewed adds the model's own")


def register(sub) -> None:
    """Add `ebird` and `inaturalist` to `edge export`'s sub-commands."""
    eb = sub.add_parser(
        "ebird", help="eBird Record Format CSV: a stationary checklist per camera and day (or per visit)",
        description="Write FILE in eBird Record Format (19 columns, no header row) for ebird.org/import: one "
                    "checklist per camera and station-local day (--per visit: per visit), protocol Stationary, "
                    "one observer, duration from the day's first to last photo, not a complete checklist (N). "
                    "Number is the most birds of the species in one photo (a day: the largest of its visits, never "
                    "a sum). Names: the model's common name with the scientific name as Genus and Species. "
                    f"{REVIEWED}. Unknown birds, family and order roll-ups are left out. Refused without "
                    "coordinates ([cameras.deployment] or [station] latitude/longitude) or [sharing] "
                    "country_code/state_province.")
    eb.add_argument("--out", type=Path, required=True, metavar="FILE", help="CSV file to write (refused if it exists)")
    _period_flags(eb)
    eb.add_argument("--per", choices=("day", "visit"), default="day",
                    help="one checklist per camera and day (default) or per visit")
    eb.add_argument("--include-unreviewed", action="store_true", help="also what no person reviewed")
    eb.add_argument("--country", metavar="CC", help="eBird's Country Code (default: [sharing] country_code)")
    eb.add_argument("--state", metavar="CODE", help="eBird's State/Province (default: [sharing] state_province)")
    eb.add_argument("--force", action="store_true", help="replace FILE when it exists")
    _db_flags(eb)
    eb.set_defaults(func=cmd_ebird)

    inat = sub.add_parser(
        "inaturalist", help="a folder for iNaturalist's uploaders: tagged photos and its CSV import; no upload",
        description="Write DIR/photos/ (one photo per observation: the visit's frame with the most birds of the "
                    "species, its EXIF set to the local capture time with offset, the camera's GPS position with "
                    "its uncertainty and a note) and DIR/observations.csv (iNaturalist's CSV import: Taxon name, "
                    "Date observed, Description, Place name, Latitude, Longitude, Tags, Geoprivacy). One observation "
                    f"per species of a visit; {REVIEWED}. Unknown birds are left out. Refused without coordinates.")
    inat.add_argument("--out", type=Path, required=True, metavar="DIR", help="folder to create (new or empty)")
    _period_flags(inat)
    inat.add_argument("--include-unreviewed", action="store_true", help="also what no person reviewed")
    inat.add_argument("--geoprivacy", choices=("open", "obscured", "private"),
                      help="iNaturalist's geoprivacy (default: [sharing] geoprivacy, obscured)")
    _db_flags(inat)
    inat.set_defaults(func=cmd_inaturalist)


def _country(value: str | None) -> str | None:
    if value is None:
        return None
    from pydantic import ValidationError

    from edge.config.sharing import SharingConfig

    try:
        return SharingConfig.model_validate({"country_code": value}).country_code
    except ValidationError:
        raise _usage(f"--country: {value!r} is not a two-letter ISO 3166-1 country code such as US or DE") from None


def _state(value: str | None) -> tuple[str | None, str | None]:
    if value is None:
        return None, None
    from pydantic import ValidationError

    from edge.config.sharing import SharingConfig

    try:
        parsed = SharingConfig.model_validate({"state_province": value})
    except ValidationError:
        raise _usage(f"--state: {value!r} is not eBird's state or province code such as NY (or US-NY)") from None
    return parsed.state_province, parsed.country_code


def cmd_ebird(args: argparse.Namespace) -> int:
    from edge.exports.ebird import export_ebird
    from edge.exports.sightings import SharingError

    if args.out.exists() and (args.out.is_dir() or not args.force):
        raise _usage(f"--out: {args.out} exists (nothing was written"
                     + ("" if args.out.is_dir() else "; --force replaces it") + ")")
    country = _country(args.country)
    state, state_country = _state(args.state)
    if state_country and country and state_country != country:
        raise _usage(f"--state: {args.state} is not in --country {country}")
    config, db, selection = _inputs(args)
    try:
        summary = export_ebird(config, db, args.out, selection, include_unreviewed=args.include_unreviewed,
                               per=args.per, country=country or state_country, state=state, force=args.force)
    except SharingError as error:
        raise _usage(str(error)) from None
    finally:
        db.conn.close()
    print("\n".join(summary.lines()))
    return EXIT_OK


def cmd_inaturalist(args: argparse.Namespace) -> int:
    from edge.exports.inaturalist import export_inaturalist, prepare_out
    from edge.exports.sightings import SharingError

    try:
        prepare_out(args.out)
    except SharingError as error:
        raise _usage(str(error)) from None
    config, db, selection = _inputs(args)
    try:
        summary = export_inaturalist(config, db, args.out, selection, include_unreviewed=args.include_unreviewed,
                                     geoprivacy=args.geoprivacy)
    except SharingError as error:
        raise _usage(str(error)) from None
    finally:
        db.conn.close()
    print("\n".join(summary.lines()))
    return EXIT_OK
