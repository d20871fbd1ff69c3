"""Drafting: the replies.toml rules, what a template sees, choosing and rendering a
draft, the tone linter, and the outgoing mail (our Message-IDs, replies, notices)."""
