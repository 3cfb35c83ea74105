"""The `labcloud` commands that are clients of the REST API, one module per group of commands.
They share `labcloud.client` (HTTP, tokens, errors) and `labcloud.commands.output` (tables, JSON)."""
