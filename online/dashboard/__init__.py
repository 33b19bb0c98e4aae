"""The operator's dashboard (`GET /dashboard`): a static page over typed JSON data endpoints.

    panels.py       the panel list the page renders (id, title, data path, refresh period)
    schemas.py      the pydantic models of every data endpoint (they show in /docs)
    state.py        what the dashboard keeps per worker: traffic sampler, its Redis connection
    traffic.py      request timing of the hot routes, sampled once a second into a ring
    overview.py     per served model: manifest, versions, CURRENT history, retrain cycles
    learning.py     rewards, exploration, propensities, users with state: bounded Redis reads
    ope.py          IPS / SNIPS / DR of candidate policies on the recent decision log
    extensions.py   optional panels later parts plug in (score tables, items added online, ...)
    providers.py    the providers of those panels for the parts the service has
    static/         index.html, dashboard.js, dashboard.css: no build step, no CDN

A new panel is one data module, one schema, one route in `online/routes/dashboard.py`, one
entry in `panels.PANELS` and one render function in `static/dashboard.js` (keyed by the
panel id); nothing else changes. Everything is read-only: the data endpoints are GETs.
"""
