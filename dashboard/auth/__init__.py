"""Accounts: sign up, log in, log out, change password."""

from __future__ import annotations

from flask import Blueprint

bp = Blueprint("auth", __name__)
