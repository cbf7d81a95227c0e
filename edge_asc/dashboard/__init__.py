"""The browser dashboard: `listen --http` and `serve --http` (see docs/dashboard.md).

One module per job: `access` (address and token checks), `feed` (what the listener hands over),
`store` (events read back), `api` (the JSON), `charts` (SVG drawn here), `pages` (HTML),
`clips` (event audio as FLAC), `server` (HTTP), `command` (what the CLI calls).
"""
