"""The operator console: web pages and a JSON API over the ticket store, with a live view of calls."""
from ivr.console.app import create_app
from ivr.console.users import Role, UserStore

__all__ = ["create_app", "Role", "UserStore"]
