"""edge.web: `edge web`, the operator's window (layer after edge.operate, before edge.daemon).

auth.py     password hashes (scrypt), signed session cookies, CSRF tokens, the login rate limit
queries.py  the read queries behind the pages (indexed; never a scan of `frames`)
charts.py   server-rendered inline SVG: bars per day, hour-of-day activity, species x hour heatmap
images.py   snapshots, frames (with boxes) and crops served by database id, never by path
app.py      the Starlette application: pages, review endpoints, the security checks
"""
