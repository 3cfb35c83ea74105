"""build(): manifest, idempotency, where files go — with the package and assembly steps faked."""
import json
import os

import pytest

import imagebuilder.build as build_module
from imagebuilder import cli, packages


@pytest.fixture
def fake_builder(tmp_path, monkeypatch):
    """build() with apt and the heavy steps replaced; records each real (non-skipped) build."""
    debs = tmp_path / "debs"
    debs.mkdir()
    versions = {"linux-image-6.1.0-9-amd64": "6.1.1-1"}
    monkeypatch.setattr(packages, "resolve_kernel_package", lambda: "linux-image-6.1.0-9-amd64")

    def fake_fetch(names, cache_dir, log=print):
        result = []
        for name in names:
            path = debs / f"{name}.deb"
            path.write_bytes(name.encode())
            result.append(packages.DebPackage(name, versions.get(name, "1.0"), str(path)))
        return result
    monkeypatch.setattr(packages, "fetch", fake_fetch)
    calls = []

    def fake_build_into(out_dir, work, name, debs, extra_names, files, file_digests, root_size_mib, log):
        calls.append({"extra": extra_names, "files": files})
        for fname in build_module.IMAGE_FILES.values():
            with open(os.path.join(out_dir, fname), "wb") as f:
                f.write(f"{fname} of {name} #{len(calls)}".encode())
        info = {role: {"path": fname, "size": os.path.getsize(os.path.join(out_dir, fname)), "sha256": "x"}
                for role, fname in build_module.IMAGE_FILES.items()}
        return {"name": name, "files": info, "kernel_version": "6.1.0-9-amd64",
                "size": sum(i["size"] for i in info.values())}
    monkeypatch.setattr(build_module, "_build_into", fake_build_into)
    return {"calls": calls, "versions": versions}


def test_build_is_idempotent_and_publishes_the_disk(tmp_path, fake_builder):
    data = tmp_path / "data"
    first = build_module.build("tiny", str(data), log=lambda m: None)
    assert first["rebuilt"] and len(fake_builder["calls"]) == 1
    image_dir = data / "images" / "tiny"
    manifest = json.loads((image_dir / "manifest.json").read_text())
    assert manifest["name"] == "tiny" and manifest["inputs_sha256"] == first["inputs_sha256"]
    assert (data / "images" / "tiny.qcow2").read_bytes() == (image_dir / "root.qcow2").read_bytes()

    second = build_module.build("tiny", str(data), log=lambda m: None)
    assert not second["rebuilt"] and len(fake_builder["calls"]) == 1

    # a new package version (a Debian point release) is a changed input
    fake_builder["versions"]["linux-image-6.1.0-9-amd64"] = "6.1.2-1"
    assert build_module.build("tiny", str(data), log=lambda m: None)["rebuilt"]
    assert (data / "images" / "tiny.qcow2").read_bytes() == b"root.qcow2 of tiny #2"
    assert sorted(os.listdir(data / "images")) == ["tiny", "tiny.qcow2"]  # no leftovers


def test_changed_extra_file_triggers_rebuild(tmp_path, fake_builder):
    src = tmp_path / "motd"
    src.write_text("welcome to the lab\n")
    data = str(tmp_path / "data")
    build_module.build("course", data, extra_files=[f"{src}:/etc/motd"], log=lambda m: None)
    assert not build_module.build("course", data, extra_files=[(str(src), "/etc/motd")], log=lambda m: None)["rebuilt"]
    src.write_text("changed\n")
    assert build_module.build("course", data, extra_files=[(str(src), "/etc/motd")], log=lambda m: None)["rebuilt"]
    assert fake_builder["calls"][-1]["files"] == [(str(src), "/etc/motd")]


def test_lost_disk_link_is_restored_without_rebuild(tmp_path, fake_builder):
    data = tmp_path / "data"
    build_module.build("tiny", str(data), log=lambda m: None)
    os.unlink(data / "images" / "tiny.qcow2")
    assert not build_module.build("tiny", str(data), log=lambda m: None)["rebuilt"]
    assert (data / "images" / "tiny.qcow2").exists()


@pytest.mark.parametrize("spec", ["nodest", "src:relative/dest", ":/etc/x"])
def test_bad_file_specs(spec):
    with pytest.raises(ValueError):
        build_module.parse_file_spec(spec)


@pytest.mark.parametrize("name", ["", "../x", ".hidden", "a/b"])
def test_bad_image_names(tmp_path, name):
    with pytest.raises(ValueError):
        build_module.build(name, str(tmp_path))


def test_cli_build(tmp_path, fake_builder, monkeypatch, capsys):
    monkeypatch.setenv("LABCLOUD_DATA_DIR", str(tmp_path / "envdata"))
    assert cli.main(["build", "tiny", "--package", "htop", "--package", "libncursesw6"]) == 0
    assert "tiny: built" in capsys.readouterr().out
    assert (tmp_path / "envdata" / "images" / "tiny" / "manifest.json").exists()
    assert fake_builder["calls"][-1]["extra"] == ["htop", "libncursesw6"]
    assert cli.main(["build", "tiny", "--data-dir", str(tmp_path / "d2"), "--file", "nocolon"]) == 1


def test_cli_help_says_depends_are_not_resolved(capsys):
    with pytest.raises(SystemExit):
        cli.main(["build", "--help"])
    assert "NOT resolved" in capsys.readouterr().out.replace("\n", " ")


@pytest.fixture
def fake_disk_image(monkeypatch):
    """diskimage.make replaced (it needs real kernel files); the host's syslinux fingerprint settable."""
    state = {"tools": "syslinux-1", "made": 0}
    monkeypatch.setattr(build_module.diskimage, "tools_fingerprint", lambda: state["tools"])

    def fake_make(out_path, bzimage, initrd, data_qcow2, work, cmdline="console=ttyS0"):
        state["made"] += 1
        assert os.path.basename(bzimage) == "bzImage" and os.path.basename(data_qcow2) == "root.qcow2"
        with open(out_path, "wb") as f:
            f.write(b"disk image #%d" % state["made"])
        return {"disk_image": os.path.basename(out_path), "disk_image_cmdline": cmdline}
    monkeypatch.setattr(build_module.diskimage, "make", fake_make)
    return state


def test_disk_image_is_an_input_and_kept_by_later_builds(tmp_path, fake_builder, fake_disk_image):
    data = str(tmp_path / "data")
    image_dir = tmp_path / "data" / "images" / "tiny"
    quiet = {"log": lambda m: None}
    assert build_module.build("tiny", data, **quiet)["rebuilt"]
    assert not (image_dir / "disk.qcow2").exists() and fake_disk_image["made"] == 0

    # --disk-image after a build without it: rebuilt, with the disk, recorded like every other file
    with_disk = build_module.build("tiny", data, disk_image=True, **quiet)
    assert with_disk["rebuilt"] and fake_disk_image["made"] == 1
    manifest = json.loads((image_dir / "manifest.json").read_text())
    info = manifest["files"]["disk_image"]
    assert info == {"path": "disk.qcow2", "size": len(b"disk image #1"),
                    "sha256": build_module.sha256_file(image_dir / "disk.qcow2")}
    assert manifest["disk_image"] == "disk.qcow2" and manifest["disk_image_cmdline"] == "console=ttyS0"
    assert manifest["size"] == sum(f["size"] for f in manifest["files"].values())

    # unchanged: skipped, with or without the flag (`labcloud run` builds tiny without it)
    assert not build_module.build("tiny", data, disk_image=True, **quiet)["rebuilt"]
    assert not build_module.build("tiny", data, **quiet)["rebuilt"]
    assert fake_disk_image["made"] == 1 and len(fake_builder["calls"]) == 2

    # a rebuild for another reason keeps the disk; so does a new syslinux on the host
    fake_builder["versions"]["linux-image-6.1.0-9-amd64"] = "6.1.2-1"
    assert build_module.build("tiny", data, **quiet)["rebuilt"]
    assert (image_dir / "disk.qcow2").read_bytes() == b"disk image #2"
    fake_disk_image["tools"] = "syslinux-2"
    assert build_module.build("tiny", data, disk_image=True, **quiet)["rebuilt"]
    assert fake_disk_image["made"] == 3

    # a lost disk.qcow2 is noticed (every file in the manifest must be there)
    os.unlink(image_dir / "disk.qcow2")
    assert build_module.build("tiny", data, **quiet)["rebuilt"] and (image_dir / "disk.qcow2").exists()


def test_cli_disk_image_flag(tmp_path, fake_builder, fake_disk_image, capsys):
    assert cli.main(["build", "tiny", "--data-dir", str(tmp_path / "d"), "--disk-image"]) == 0
    assert "bootable disk disk.qcow2" in capsys.readouterr().out
    assert (tmp_path / "d" / "images" / "tiny" / "disk.qcow2").exists()


def test_cli_reports_missing_disk_tools(tmp_path, fake_builder, monkeypatch, capsys):
    def missing():
        raise build_module.diskimage.DiskImageError("syslinux not found: --disk-image needs ...")
    monkeypatch.setattr(build_module.diskimage, "tools_fingerprint", missing)
    assert cli.main(["build", "tiny", "--data-dir", str(tmp_path / "d"), "--disk-image"]) == 1
    assert "syslinux not found" in capsys.readouterr().err
    assert fake_builder["calls"] == []  # refused before any work
