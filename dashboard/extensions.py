"""Hold the extension singletons; `create_app` binds them with `init_app`."""

from __future__ import annotations

from flask_limiter import Limiter
from flask_limiter.util import get_remote_address
from flask_login import LoginManager
from flask_migrate import Migrate
from flask_sqlalchemy import SQLAlchemy
from flask_talisman import Talisman
from flask_wtf import CSRFProtect
from htmx_flask import Htmx

from dashboard.models.base import Base

db = SQLAlchemy(model_class=Base)
migrate = Migrate(compare_type=True)
talisman = Talisman()
htmx_flask = Htmx()  # the extension object; the module `dashboard.htmx` reads its headers
csrf = CSRFProtect()
login_manager = LoginManager()
# No default limits: only the routes that need one (login, generation) declare it.
limiter = Limiter(key_func=get_remote_address, default_limits=[])
