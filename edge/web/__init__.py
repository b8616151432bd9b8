"""edge.web: `edge web`, the operator's window (layer after edge.operate, before edge.daemon).

auth.py     password hashes (scrypt), signed session cookies and their revocation, CSRF tokens,
            the login rate limit
queries.py  the read queries behind the pages (indexed; never a scan of `frames`)
charts.py   server-rendered inline SVG: bars per day, hour-of-day activity, species x hour heatmap
images.py   pictures by database id, never by path: the path checks, decoding, boxes, crops
app.py      the composition root: the site, the session gate, the route modules, the route table
site.py     what the route modules share: config, templates and names, render, read
sessions.py the per-request gate: session cookie, CSRF, login and role checks, security headers
pages.py    the read-only pages: today, species, heatmap, events, event, health
review_routes.py  the review queue, reviews and undo, repeat places and their release (the writes)
image_routes.py   snapshots, frames, crops, repeat pictures and clips by id
auth_routes.py    login and logout
guard.py    before the app: allowed Host names, same-origin POSTs, the request body limit
server.py   uvicorn with a request deadline and connection limits (what it lacks for slow clients)
logs.py     the log rate limit of `edge web`
"""
