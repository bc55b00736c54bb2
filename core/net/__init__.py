"""Outbound network access for user-supplied links, guarded against SSRF."""
