"""The Notte API: asking (client, paging, the key) and reading the answers (models)."""
