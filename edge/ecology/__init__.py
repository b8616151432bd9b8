"""For ecologists: deployments, the Camtrap DP and COCO Camera Traps exports, and the standard
camera-trap analyses (`edge report`). Readers of the database and the configuration only: the
daemon never imports this package, and plot libraries are imported only by the report."""
