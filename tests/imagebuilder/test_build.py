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
