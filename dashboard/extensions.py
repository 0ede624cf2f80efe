"""Hold the extension singletons; `create_app` binds them with `init_app`."""

from __future__ import annotations

from flask_migrate import Migrate
from flask_sqlalchemy import SQLAlchemy
from flask_talisman import Talisman
from htmx_flask import Htmx

from dashboard.models.base import Base

db = SQLAlchemy(model_class=Base)
migrate = Migrate(compare_type=True)
talisman = Talisman()
htmx = Htmx()
