"""Helpdesk: accounts, sessions, tickets, support, attachments, uploads and mail."""
