"""labcloud image builder: bootable course images made from Debian packages only.

`imagebuilder.build.build(name, data_dir)` writes `<data_dir>/images/<name>/` (kernel, initramfs,
ext4 root disk as qcow2, manifest) and `<data_dir>/images/<name>.qcow2`, the path the storage
service seeds. `imagebuilder.cli.main(argv)` is `labcloud image ...`; `imagebuilder.bareboot`
boots an image with bare QEMU and logs in over SSH.
"""
