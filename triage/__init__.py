"""triage: an email-integrated complaint triage service."""

__version__ = "0.1.0"
