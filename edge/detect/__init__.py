"""Finding birds in a frame before classifying them: "detect, then classify".

    model.py     resolve_detector (the .tflite, its labels, the label offset, which classes are
                 birds), Detector (SSD post-processed or raw YOLO outputs → Box), DetectorError
    boxes.py     iou, nms, suppress_contained: pure NumPy box arithmetic
    tiles.py     parse_tiles, tile_grid, plan_tiles: the overlapping tiles a wide frame is cut into
    banner.py    find_banner (a trail camera's information strip at the top/bottom), BannerMemory
                 (learned per camera), uncrop (a box of the picture back to the whole frame)
    finder.py    BirdFinder.locate (decode with a JPEG draft scale, the banner cut away, full
                 frame + tiles, merge, square crops at the classifier's size), crop_birds (the
                 same crops for the trainer)
    annotate.py  draw: boxes and captions on a picture

Layer: after edge.classify (it reuses the classifier's runtime loader and label files), before
edge.store. Never imports TensorFlow.
"""
