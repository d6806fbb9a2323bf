"""The dashboard blueprint, shared by the login and the page modules."""
from flask import Blueprint

bp = Blueprint("dashboard", __name__, template_folder="templates", static_folder="static",
               static_url_path="/dashboard-static")
