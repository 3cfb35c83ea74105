"""The host agent: one per hypervisor host. It owns that host's libvirt connection and runs
domain and storage-pool operations for the services, on the RPC queue `hostagent_<host>`."""
