"""labcloud's REST gateway: authenticates, validates, calls a service over RPC, maps errors."""
