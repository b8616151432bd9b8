"""Exports: everything that leaves the station as a file, in one home (`edge export ...`).

camtrap_dp (Camtrap DP 1.0.2 package) · camtrap_dp_validate (its offline frictionless check
and the standards' cache) · coco_ct (COCO Camera Traps JSON) · events (the MQTT stream as JSON
Lines, for `collector import`) · training_set (reviewed crops for the trainer) · sightings (what
the citizen-science exports share) · ebird (eBird record format CSV) · inaturalist (its CSV and
tagged photo copies) · exif (the tags written into those copies).

Why one package: these read the database and the configuration and write files for someone
else's tool; none of them runs in the daemon. They sit above edge/ecology (deployments and the
media selection they build on) and below the CLI; the daemon never imports this package.
"""
