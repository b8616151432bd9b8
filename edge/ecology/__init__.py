"""For ecologists: deployments (where and when each camera stood), the media selection the exports
and analyses share, and the standard camera-trap analyses (`edge report`). Readers of the
database and the configuration only: the daemon never imports this package, and plot libraries
are imported only by the report. What leaves the station as a file is in edge/exports."""
