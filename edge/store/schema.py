"""The edge database's schema and its migrations.

`MIGRATIONS[i]` migrates schema version i to i + 1; `Store` applies the missing steps in one
transaction at start. Append a step for every change; never edit a released one (a device
in the field may hold a database of any earlier version).
"""

from __future__ import annotations

from collections.abc import Callable

import sqlite_utils

from edge.store import clips, counts, folders, hourly, notifications, outbox, repeats, taxa

SCHEMA_VERSION = 6


def _schema_v1(db: sqlite_utils.Database) -> None:
    # Database.executescript stays inside the open transaction (sqlite3's would commit first).
    db.executescript(
        """
        CREATE TABLE IF NOT EXISTS frames (
            id INTEGER PRIMARY KEY,
            path TEXT NOT NULL,
            sha256 TEXT NOT NULL,
            camera TEXT NOT NULL,
            size INTEGER,
            mtime REAL,
            captured_at TEXT,
            time_source TEXT,
            processed_at TEXT NOT NULL,
            status TEXT NOT NULL CHECK (status IN ('ok', 'error')),
            error TEXT,
            model_id TEXT,
            inference_ms REAL,
            species TEXT,
            confidence REAL,
            event_id INTEGER REFERENCES events(id),
            stored_path TEXT
        );
        -- A frame recorded ok is never recorded again, whatever its path (idempotence).
        CREATE UNIQUE INDEX IF NOT EXISTS frames_sha256_ok ON frames (sha256) WHERE status = 'ok';
        CREATE INDEX IF NOT EXISTS frames_sha256 ON frames (sha256);
        CREATE INDEX IF NOT EXISTS frames_camera_captured ON frames (camera, captured_at);
        CREATE INDEX IF NOT EXISTS frames_status ON frames (status);
        CREATE INDEX IF NOT EXISTS frames_path ON frames (path);
        CREATE INDEX IF NOT EXISTS frames_event ON frames (event_id);

        CREATE TABLE IF NOT EXISTS predictions (
            frame_id INTEGER NOT NULL REFERENCES frames(id) ON DELETE CASCADE,
            rank INTEGER NOT NULL,
            label TEXT NOT NULL,
            score REAL NOT NULL,
            PRIMARY KEY (frame_id, rank)
        );

        CREATE TABLE IF NOT EXISTS events (
            id INTEGER PRIMARY KEY,
            uid TEXT NOT NULL UNIQUE,
            camera TEXT NOT NULL,
            species TEXT NOT NULL,
            confidence REAL,
            started_at TEXT NOT NULL,
            ended_at TEXT NOT NULL,
            frame_count INTEGER NOT NULL,
            model_id TEXT,
            state TEXT NOT NULL CHECK (state IN ('open', 'closed'))
        );
        CREATE INDEX IF NOT EXISTS events_camera_started ON events (camera, started_at);
        CREATE INDEX IF NOT EXISTS events_species_started ON events (species, started_at);
        CREATE INDEX IF NOT EXISTS events_state ON events (state);

        CREATE TABLE IF NOT EXISTS daily_tallies (
            day TEXT NOT NULL,
            camera TEXT NOT NULL,
            species TEXT NOT NULL,
            events INTEGER NOT NULL DEFAULT 0,
            frames INTEGER NOT NULL DEFAULT 0,
            PRIMARY KEY (day, camera, species)
        );

        """
    )
    # The MQTT outbox and its drop counters belong to edge/store/outbox.py (same transaction).
    outbox.create_table(db)


def _schema_v2(db: sqlite_utils.Database) -> None:
    """Retries of transient frame errors, superseded error rows, and each event's vote state.

    - frames.attempts / retry_at: a frame that failed for a reason that may pass (unreadable,
      cannot stat: permissions, I/O errors, a file vanishing mid-read) is tried again; attempts
      counts the failed tries, retry_at says when the next one is due (NULL: none is).
      Version-1 rows of those kinds get one attempt and are due now, so that the first start
      after the upgrade retries the frames the old version had given up on.
    - frames.superseded_by: the later row at the same path that replaced an error row (the
      file became readable, or valid content replaced corrupt content); superseded errors are
      not errors any more. No foreign key: retention may prune the replacing row first.
    - event_votes: what each species' frames contribute to an event's majority vote, kept up to
      date in the frame's transaction so that a frame's cost does not grow with its visit (the
      vote used to read all of the visit's frames). Built here from the frames, plus the rows
      retention pruned, which vote for the event's species as version 1 counted them (from
      frame_count): an old database's next vote is the one version 1 would have taken.
    """
    db.executescript(
        """
        ALTER TABLE frames ADD COLUMN attempts INTEGER;
        ALTER TABLE frames ADD COLUMN retry_at TEXT;
        ALTER TABLE frames ADD COLUMN superseded_by INTEGER;

        UPDATE frames SET attempts = 1, retry_at = processed_at
         WHERE status = 'error' AND (error LIKE 'unreadable: %' OR error LIKE 'cannot stat: %');
        UPDATE frames SET superseded_by = (
                   SELECT MIN(later.id) FROM frames AS later WHERE later.path = frames.path AND later.id > frames.id)
         WHERE status = 'error';
        UPDATE frames SET retry_at = NULL WHERE superseded_by IS NOT NULL;

        CREATE TABLE IF NOT EXISTS event_votes (
            event_id INTEGER NOT NULL REFERENCES events(id),
            species TEXT NOT NULL,
            frames INTEGER NOT NULL,
            confidence_sum REAL NOT NULL,
            best_confidence REAL,
            first_at TEXT NOT NULL,
            PRIMARY KEY (event_id, species)
        ) WITHOUT ROWID;

        INSERT INTO event_votes (event_id, species, frames, confidence_sum, best_confidence, first_at)
        SELECT event_id, species, COUNT(*), COALESCE(SUM(confidence), 0.0), MAX(confidence), MIN(captured_at)
          FROM frames WHERE event_id IS NOT NULL GROUP BY event_id, species;

        -- Pruned frame rows: what frame_count has and the frames table lost, for the event's species.
        INSERT INTO event_votes (event_id, species, frames, confidence_sum, best_confidence, first_at)
        SELECT id, species, missing, missing * COALESCE(confidence, 0.0), confidence, started_at
          FROM (SELECT e.id, e.species, e.confidence, e.started_at,
                       e.frame_count - (SELECT COUNT(*) FROM frames AS f WHERE f.event_id = e.id) AS missing
                  FROM events AS e)
         WHERE missing > 0
        ON CONFLICT (event_id, species) DO UPDATE SET
            frames = frames + excluded.frames,
            confidence_sum = confidence_sum + excluded.confidence_sum,
            best_confidence = CASE WHEN best_confidence IS NULL THEN excluded.best_confidence
                                   WHEN excluded.best_confidence IS NULL THEN best_confidence
                                   ELSE MAX(best_confidence, excluded.best_confidence) END,
            first_at = MIN(first_at, excluded.first_at);
        """
    )

def _schema_v3(db: sqlite_utils.Database) -> None:
    """Detect, then classify: the birds found in each frame, and counts of individuals.

    - detections: one row per bird the detector found in a frame (box normalised to the
      oriented frame, detector score and label), with what the classifier made of its crop
      (decision kind, species, confidence, top-k as JSON) and the event it was counted in.
    - frames.birds: how many birds the detector found (0: an empty frame, recorded and not
      classified); NULL for frames classified whole (no detector), as every version-2 row was.
      frames.detector_id: the detector model that looked at the frame.
    - events.individuals: the most birds of the event in any one of its frames (MaxN, the
      camera-trap convention). A version-2 event was one bird per frame: 1.
      events.best_detection_id / snapshot: the detection whose crop shows the event best, and the
      file name of that crop (a small JPEG under the state directory's snapshots/ folder).
    - daily_tallies.individuals: the summed MaxN of the day's events per camera and species; a
      version-2 tally counted one bird per event, so it starts as its events.
    """
    db.executescript(
        """
        ALTER TABLE frames ADD COLUMN birds INTEGER;
        ALTER TABLE frames ADD COLUMN detector_id TEXT;

        CREATE TABLE IF NOT EXISTS detections (
            id INTEGER PRIMARY KEY,
            frame_id INTEGER NOT NULL REFERENCES frames(id) ON DELETE CASCADE,
            rank INTEGER NOT NULL,
            ymin REAL NOT NULL,
            xmin REAL NOT NULL,
            ymax REAL NOT NULL,
            xmax REAL NOT NULL,
            score REAL NOT NULL,
            detector_label TEXT,
            kind TEXT NOT NULL CHECK (kind IN ('species', 'unknown', 'none')),
            species TEXT,
            confidence REAL,
            top_k TEXT,
            event_id INTEGER REFERENCES events(id),
            UNIQUE (frame_id, rank)
        );
        CREATE INDEX IF NOT EXISTS detections_event ON detections (event_id);

        ALTER TABLE events ADD COLUMN individuals INTEGER NOT NULL DEFAULT 1;
        ALTER TABLE events ADD COLUMN best_detection_id INTEGER;
        ALTER TABLE events ADD COLUMN snapshot TEXT;

        ALTER TABLE daily_tallies ADD COLUMN individuals INTEGER NOT NULL DEFAULT 0;
        UPDATE daily_tallies SET individuals = events;
        """
    )


def _schema_v4(db: sqlite_utils.Database) -> None:
    """Reviews: human observations stored next to the machine's (edge/store/reviews.py).

    - reviews: who said what about an event or one of its detections, when, what the machine
      had said then, which earlier review of the same target it supersedes, and whether it was
      undone. Never updated except to mark it undone; the machine's columns are never changed.
    - events.review_state / reviewed_species / reviewed_individuals / reviewed_at: the effective
      event-level review, a cache kept in each review's transaction, so that reports and the
      tallies read the counted truth without replaying the history.
    - detections.review_state / reviewed_species: the same for one bird.
    - indexes for the review queue (unreviewed events, least confident first), the history, the
      events by start and the frames by processing time; row_counts with triggers keeping the
      number of frame rows, so no reader counts them.
    """
    db.executescript(
        """
        CREATE TABLE IF NOT EXISTS reviews (
            id INTEGER PRIMARY KEY,
            created_at TEXT NOT NULL,
            reviewer TEXT NOT NULL,
            event_id INTEGER NOT NULL REFERENCES events(id),
            detection_id INTEGER REFERENCES detections(id),
            action TEXT NOT NULL CHECK (action IN ('confirm', 'correct', 'reject', 'individuals')),
            species TEXT,
            individuals INTEGER,
            machine_species TEXT,
            machine_confidence REAL,
            replaces INTEGER REFERENCES reviews(id),
            undone_at TEXT,
            undone_by TEXT
        );
        CREATE INDEX IF NOT EXISTS reviews_event ON reviews (event_id);
        CREATE INDEX IF NOT EXISTS reviews_detection ON reviews (detection_id);
        CREATE INDEX IF NOT EXISTS reviews_created ON reviews (created_at);

        ALTER TABLE events ADD COLUMN review_state TEXT;
        ALTER TABLE events ADD COLUMN reviewed_species TEXT;
        ALTER TABLE events ADD COLUMN reviewed_individuals INTEGER;
        ALTER TABLE events ADD COLUMN reviewed_at TEXT;
        CREATE INDEX IF NOT EXISTS events_review_queue ON events (review_state, confidence);
        -- Events by start, covering what the heatmap and hour-of-day charts count (species and
        -- review), so a year of visits is counted from the index alone.
        CREATE INDEX IF NOT EXISTS events_started ON events (started_at, species, review_state, reviewed_species);
        -- `edge frames`, `edge status` and the web health page read the newest frames by
        -- processed_at: without it each was a scan of every frame.
        CREATE INDEX IF NOT EXISTS frames_processed ON frames (processed_at);

        ALTER TABLE detections ADD COLUMN review_state TEXT;
        ALTER TABLE detections ADD COLUMN reviewed_species TEXT;

        -- How many frame rows there are, kept by triggers for every writer (the daemon, retention
        -- pruning): `edge status` and the web health page read it instead of counting a
        -- million rows (about 150 ms each time).
        CREATE TABLE IF NOT EXISTS row_counts (name TEXT PRIMARY KEY, count INTEGER NOT NULL);
        INSERT OR REPLACE INTO row_counts (name, count) SELECT 'frames', COUNT(*) FROM frames;
        CREATE TRIGGER IF NOT EXISTS frames_counted_in AFTER INSERT ON frames
            BEGIN UPDATE row_counts SET count = count + 1 WHERE name = 'frames'; END;
        CREATE TRIGGER IF NOT EXISTS frames_counted_out AFTER DELETE ON frames
            BEGIN UPDATE row_counts SET count = count - 1 WHERE name = 'frames'; END;
        """
    )


def _schema_v5(db: sqlite_utils.Database) -> None:
    """Names for ecologists: `taxa` records each species label's scientific and common name as
    the models gave them (edge/store/taxa.py), so exports read them from the database even
    after the model changed. Empty until the daemon's next start fills it."""
    taxa.create_table(db)


def _schema_v6(db: sqlite_utils.Database) -> None:
    """Per-species counts in every visit (edge/store/events.py, edge/store/counts.py).

    - event_votes.individuals / together / rank: per name in a visit, the most birds of it in
      one frame (MaxN), whether it was seen in a frame together with another name, and its rank
      (a species, or a rolled-up taxon). Rebuilt from the stored detections (frames classified
      whole: one bird a frame); a name whose frame rows retention pruned keeps one bird, and the
      event's headline at least the event's own MaxN of version 5 when nothing else says more.
    - event_species: what each visit counts per species (individuals, frames, the station day
      of the visit), the one truth that tallies, reports, MQTT and exports read.
    - daily_tallies' events and individuals are recounted from it (frames stay as they were):
      a version-5 visit with two species counted both birds for its headline species.
    - detections.model_species / flag, frames.flag: the classifier's own top species when the
      species prior or the roll-up chose another name, and a possible rarity's flag
      (`out_of_range`); taxa.rank: a rolled-up taxon's rank (genus, family, order).
    - events.flag: a visit with a possible rarity (`out_of_range`), shown and reviewed first.
    - frames.time_flags: what is doubtful about a frame's capture time (comma-separated:
      `ambiguous`, `nonexistent`, `malformed-offset`, `out-of-order`, `before-deployment`,
      `future`), NULL when nothing is; events.time_flags: the doubtful ones among its frames'
      (`future`, `before-deployment`, `out-of-order`: edge/store/clock_checks.py), which keep the
      visit out of effort and deployment spans. A partial index finds the few flagged frames.
    - frames.night: 1 for an infrared night frame (monochrome, lit by the camera's LEDs:
      edge/detect/night.py), 0 for a day frame, NULL where not known (error rows, older rows).
    - clock_corrections: the clock corrections applied after the fact (edge/store/corrections.py,
      `edge clock correct`): who, when, camera, range, offset, frames and visits moved, why.
    - notifications, notification_stats: the push notifications' durable queue, one row per
      (notification, target), and its cumulative figures (edge/store/notifications.py).
    - frame_objects: the people and vehicles a detector with such classes (MegaDetector) found
      in a frame, one row per box (kind 'person' | 'vehicle', box normalised to the oriented
      frame, detector score and label): never classified nor counted; the frame is one with a
      person (Camtrap DP `human`, kept private with [privacy] hide_people) or a vehicle.
    - repeat_places, repeat_days: each camera's places where the same thing was detected again
      and again, their state (candidate, suppressed, released) and the days each was seen on
      (edge/store/repeats.py: repeat-detection elimination); detections.flag `repeat` marks a
      detection suppressed at such a place.
    - events.snapshot_at: when the event's snapshot file was (last) written, the time
      [retention] snapshot_days counts from (a visit of an old backlog gets its picture today).
    - picture_folders: each camera's folder and the archive as the daemon was configured
      (edge/store/folders.py), so that `edge web --db` alone can serve the pictures.
    - clips: one row per video clip (edge/store/clips.py: its file, container, codec, duration,
      capture time, sampling, state decoding | done | error with its reason, frames decoded and
      sampled); frames.clip_id / clip_offset_s: a clip's sampled frames, one frames row each.
    - hourly_visits: the visits per UTC hour of their start and species that count it (the
      heatmap's count, edge/store/hourly.py), kept by triggers on event_species and events for
      every writer; tallied from event_species once it is recounted.
    The counts are recomputed by edge.store.counts in Python (the same code the writer runs),
    in the migration's transaction.
    """
    db.executescript(
        """
        ALTER TABLE event_votes ADD COLUMN individuals INTEGER NOT NULL DEFAULT 1;
        ALTER TABLE event_votes ADD COLUMN together INTEGER NOT NULL DEFAULT 0;
        ALTER TABLE event_votes ADD COLUMN rank TEXT;
        ALTER TABLE detections ADD COLUMN model_species TEXT;
        ALTER TABLE detections ADD COLUMN flag TEXT;
        ALTER TABLE frames ADD COLUMN model_species TEXT;
        ALTER TABLE frames ADD COLUMN flag TEXT;
        ALTER TABLE taxa ADD COLUMN rank TEXT;
        ALTER TABLE events ADD COLUMN flag TEXT;
        ALTER TABLE frames ADD COLUMN time_flags TEXT;
        ALTER TABLE events ADD COLUMN time_flags TEXT;
        ALTER TABLE events ADD COLUMN snapshot_at TEXT;
        ALTER TABLE frames ADD COLUMN night INTEGER;
        CREATE INDEX IF NOT EXISTS frames_time_flags ON frames (camera, time_flags) WHERE time_flags IS NOT NULL;

        -- MaxN per name from the detections (several birds of one name in one frame) ...
        UPDATE event_votes SET individuals = COALESCE((
            SELECT MAX(n) FROM (SELECT COUNT(*) AS n FROM detections AS d
                                 WHERE d.event_id = event_votes.event_id AND d.species = event_votes.species
                                 GROUP BY d.frame_id)), 1);
        -- ... seen together with another name in one frame ...
        UPDATE event_votes SET together = 1 WHERE EXISTS (
            SELECT 1 FROM detections AS d WHERE d.event_id = event_votes.event_id AND d.species = event_votes.species
               AND EXISTS (SELECT 1 FROM detections AS o WHERE o.frame_id = d.frame_id AND o.event_id = d.event_id
                              AND o.species IS NOT NULL AND o.species != d.species));
        -- ... and the headline keeps the event's MaxN where no detection row says more (frames
        -- classified whole, pruned rows of a single-species visit).
        UPDATE event_votes SET individuals = MAX(individuals, (
            SELECT e.individuals FROM events AS e WHERE e.id = event_votes.event_id))
         WHERE species = (SELECT e.species FROM events AS e WHERE e.id = event_votes.event_id)
           AND NOT EXISTS (SELECT 1 FROM event_votes AS o WHERE o.event_id = event_votes.event_id
                              AND o.species != event_votes.species);
        """
    )
    counts.create_tables(db.conn)
    db.execute(
        """CREATE TABLE IF NOT EXISTS clock_corrections (
               id INTEGER PRIMARY KEY,
               created_at TEXT NOT NULL,
               reviewer TEXT NOT NULL,
               camera TEXT NOT NULL,
               since TEXT NOT NULL,
               until TEXT NOT NULL,
               offset_s REAL NOT NULL,
               frames INTEGER NOT NULL,
               events INTEGER NOT NULL,
               reason TEXT
           )""")
    notifications.create_tables(db.conn)
    db.executescript(
        """
        CREATE TABLE IF NOT EXISTS frame_objects (
            id INTEGER PRIMARY KEY,
            frame_id INTEGER NOT NULL REFERENCES frames(id) ON DELETE CASCADE,
            rank INTEGER NOT NULL,
            kind TEXT NOT NULL CHECK (kind IN ('person', 'vehicle')),
            ymin REAL NOT NULL,
            xmin REAL NOT NULL,
            ymax REAL NOT NULL,
            xmax REAL NOT NULL,
            score REAL NOT NULL,
            detector_label TEXT,
            UNIQUE (frame_id, rank)
        );
        CREATE INDEX IF NOT EXISTS frame_objects_kind ON frame_objects (kind, frame_id);
        """)
    repeats.create_tables(db.conn)
    folders.create_tables(db.conn)
    clips.create_tables(db.conn)
    counts.recount_all(db.conn)
    hourly.create_tables(db.conn)


# Index i migrates schema version i to i + 1. Append; never edit a released step.

MIGRATIONS: list[Callable[[sqlite_utils.Database], None]] = [
    _schema_v1, _schema_v2, _schema_v3, _schema_v4, _schema_v5, _schema_v6]

assert len(MIGRATIONS) == SCHEMA_VERSION
