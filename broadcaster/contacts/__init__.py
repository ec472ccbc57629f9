"""Contacts: normalising phone numbers and e-mail addresses, and reading contacts files (CSV/XLSX)."""
