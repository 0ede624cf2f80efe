"""Speech generation: the generation page, the background job, one generation's pages.

- `/o/<slug>/generate` (`generate` blueprint, routes.py): the form, quota, submit.
- `/o/<slug>/generations/<id>/…` (`generations` blueprint, routes.py): the detail page
  with its waveform player, status widget, audio and retry.
- jobs.py: what a worker does with a queued generation, and the reaper.
"""

from dashboard.tenancy import tenant_blueprint

generate_bp = tenant_blueprint("generate", __name__, "/generate")
bp = tenant_blueprint("generations", __name__, "/generations")
