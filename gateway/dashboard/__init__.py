"""The migration dashboard: one offline page at /dashboard and the keyed JSON it polls.

Everything the page loads (HTML, script, style) is served from `static/` by the gateway itself;
there is no chart library (bars are inline SVG drawn by dashboard.js). See `routes.py`.
"""

from gateway.dashboard.routes import routes

__all__ = ["routes"]
