"""edge.web: `edge web`, the operator's window (layer after edge.operate, before edge.daemon).

auth.py     password hashes (scrypt), signed session cookies and their revocation, CSRF tokens,
            the login rate limit
queries.py  the read queries behind the pages (indexed; never a scan of `frames`)
charts.py   server-rendered inline SVG: bars per day, hour-of-day activity, species x hour heatmap
images.py   snapshots, frames (with boxes) and crops served by database id, never by path
app.py      the Starlette application: pages, review endpoints, the security checks
guard.py    before the app: allowed Host names, same-origin POSTs, the request body limit
server.py   uvicorn with a request deadline and connection limits (what it lacks for slow clients)
logs.py     the log rate limit of `edge web`
"""
