"""rrdtool files of instances and hosts in XenServer's layout, and their readers: used by the
metrics service (every file, for as long as the archives reach) and by each host agent (its own
VMs, for its HTTP port). Plain modules, no nameko; every call blocks (run them in native threads)."""
