"""Create, edit and delete custom voices (admins and owners)."""

from __future__ import annotations
