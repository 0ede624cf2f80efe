"""Analytics: daily snapshots per organisation (snapshots.py) and the analytics page."""

import sys

import pygal  # noqa: F401  (imported first, so its import hook can be removed below)

from dashboard.tenancy import tenant_blueprint

# pygal appends a legacy `sys.meta_path` finder for its map plugins (which Voxboard
# doesn't use). It has no `find_spec`, so every failed import anywhere in the process
# would warn ("PluginImportFixer.find_spec() not found"); take it out again.
sys.meta_path[:] = [f for f in sys.meta_path if type(f).__name__ != "PluginImportFixer"]

bp = tenant_blueprint("analytics", __name__, "/analytics")
