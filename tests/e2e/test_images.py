"""Images through the REST API and the CLI on the whole system (libvirt's test driver; the
real-guest test proves a saved disk's content): upload with the CLI's progress bar and versions by
name, booting by name, each refusal (bad format, backing file, too large, visibility, flavor below
the minimums, in use), save a stopped instance as an image and boot it, delete."""
import http.client
import os
import subprocess
import tempfile
import urllib.parse
import uuid

import pytest

from tests.e2e.api import ADMIN_PASSWORD, Api, approved_user
from tests.e2e.test_cli import ok, run
from tests.e2e.portal import Portal
from tests.e2e.test_lifecycle import create, flavor_id, wait_state

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def admin(stack):
    return Api(stack.url).login("admin", ADMIN_PASSWORD)


@pytest.fixture(scope="module")
def course(stack, admin):
    """A course with a teacher (manager) and a student (member)."""
    project = admin.call("POST", "/projects", 201, json={"name": f"img-{uuid.uuid4().hex[:6]}"}).json()["id"]
    teacher = approved_user(stack.url, admin, f"it{uuid.uuid4().hex[:6]}", project=project)
    admin.call("PATCH", f"/projects/{project}/members/{teacher.user_id}", 200, json={"role": "manager"})
    relogged = Api(stack.url).login(teacher.username, teacher.password)  # a token that knows the new role
    relogged.username, relogged.password, relogged.user_id, relogged.key = (
        teacher.username, teacher.password, teacher.user_id, teacher.key)
    teacher = relogged
    student = approved_user(stack.url, admin, f"is{uuid.uuid4().hex[:6]}", project=project)
    outsider = approved_user(stack.url, admin, f"io{uuid.uuid4().hex[:6]}")
    return project, teacher, student, outsider


@pytest.fixture
def disk(tmp_path):
    path = str(tmp_path / "disk.qcow2")
    subprocess.run(["qemu-img", "create", "-q", "-f", "qcow2", path, "1G"], check=True)
    with open(path, "ab") as grow:  # some bytes to stream: 3 MiB more than the header (qcow2 ignores them)
        grow.write(os.urandom(3 << 20))
    return path


def upload(api, name, path, expect=200, **fields):
    image = api.call("POST", "/images", 201, json={"name": name, **fields}).json()
    with open(path, "rb") as body:
        answer = api.call("PUT", f"/images/{image['id']}/file", expect, data=body,
                          headers={"Content-Type": "application/octet-stream"})
    return image, answer


def cli_home(stack, api):
    home = tempfile.mkdtemp(prefix="labcloud-cli-home-")
    ok(run(home, "login", "--url", stack.url, "--username", api.username, "--password-stdin",
           stdin=api.password + "\n"))
    return home


def test_upload_with_the_cli_versions_by_name_and_boot_the_newest(stack, course, disk):
    _, _, student, _ = course
    home = cli_home(stack, student)
    first = ok(run(home, "image", "upload", "deb", disk, "--min-memory-mib", "128"))
    assert "deb version 1" in first and "active" in first and "sha256" in first
    second = ok(run(home, "image", "upload", "deb", disk))
    assert "deb version 2" in second
    listed = {(i["name"], i["version"]): i for i in student.call("GET", "/images", 200).json()}
    assert listed[("deb", 1)]["min_memory_mib"] == 128 and listed[("deb", 2)]["state"] == "active"
    assert listed[("deb", 1)]["file_bytes"] == os.path.getsize(disk)
    shown = ok(run(home, "image", "list"))
    assert "deb" in shown and "private" in shown

    ok(run(home, "instance", "create", "by-name", "--flavor", "small", "--image", "deb", "--key", "k", "--wait"))
    made = next(i for i in student.call("GET", "/instances", 200).json() if i["name"] == "by-name")
    assert made["image"] == listed[("deb", 2)]["id"] and made["state"] == "running"
    by_id = create(student, "by-id", image=listed[("deb", 1)]["id"])
    assert by_id["image"] == listed[("deb", 1)]["id"] and by_id["state"] == "running"

    # In use: refused naming what stands on it; once the instance is gone, the image goes.
    refused = student.call("DELETE", f"/images/{made['image']}", 409).json()["error"]
    assert refused["fields"] == {"image": [f"the root disk of instance {made['id']}"]}
    student.call("DELETE", f"/instances/{made['id']}", 202)
    student.wait_for(f"/instances/{made['id']}", lambda r: r.status_code == 404, timeout=30)
    gone = ok(run(home, "image", "delete", str(made["image"])))
    assert "deleted" in gone
    student.call("GET", f"/images/{made['image']}", 404)
    student.call("DELETE", f"/instances/{by_id['id']}", 202)


def test_bad_files_are_refused_naming_the_file_and_leave_nothing(stack, course, tmp_path):
    _, _, student, _ = course
    text = tmp_path / "notes.txt"
    text.write_text("not a disk image\n" * 1000)
    image, answer = upload(student, "bad", str(text), 400)
    assert answer.json()["error"]["fields"] == {"file": ["expected a qcow2 image"]}
    base, layered = str(tmp_path / "base.qcow2"), str(tmp_path / "layered.qcow2")
    subprocess.run(["qemu-img", "create", "-q", "-f", "qcow2", base, "64M"], check=True)
    subprocess.run(["qemu-img", "create", "-q", "-f", "qcow2", "-F", "qcow2", "-b", base, layered], check=True)
    _, answer = upload(student, "layered", layered, 400)
    assert answer.json()["error"]["fields"] == {"file": ["has a backing file"]}
    _, answer = upload(student, "raw-claimed", base, 400, format="raw")
    assert answer.json()["error"]["fields"] == {"file": ["expected a raw image"]}
    failed = student.call("GET", f"/images/{image['id']}", 200).json()
    assert failed["state"] == "error" and failed["reason"]
    store = os.path.join(stack.data_dir, "images", "store")
    assert not [f for f in os.listdir(store) if f.startswith(f"{image['id']}.")]
    student.call("POST", "/instances", 400, json={"name": "x", "flavor": 1, "image": image["id"], "key": student.key})


def test_a_body_declared_past_the_limit_is_413_before_a_byte_is_stored(stack, course):
    _, _, student, _ = course
    image = student.call("POST", "/images", 201, json={"name": "huge"}).json()
    url = urllib.parse.urlsplit(stack.url)
    conn = http.client.HTTPConnection(url.hostname, url.port, timeout=30)
    conn.putrequest("PUT", f"/api/v1/images/{image['id']}/file")
    conn.putheader("Authorization", f"Bearer {student.token}")
    conn.putheader("Content-Type", "application/octet-stream")
    conn.putheader("Content-Length", str(1 << 40))
    conn.endheaders()
    answer = conn.getresponse()
    body = answer.read()
    conn.close()
    assert answer.status == 413, body
    assert b'"file"' in body and b"IMAGE_MAX_BYTES" in body
    assert student.call("GET", f"/images/{image['id']}", 200).json()["state"] == "queued"


def test_visibility_decides_who_makes_sees_and_boots(stack, course, disk):
    project, teacher, student, outsider = course
    refused = student.call("POST", "/images", 403, json={"name": "pub", "visibility": "public"}).json()
    assert "visibility" in refused["error"]["fields"]
    refused = student.call("POST", "/images", 403, json={"name": "c", "visibility": "project",
                                                         "project": project}).json()
    assert "project" in refused["error"]["fields"]
    shared, _ = upload(teacher, "lab", disk, visibility="project", project=project)
    assert {i["id"] for i in student.call("GET", "/images", 200).json()} >= {shared["id"]}
    assert shared["id"] not in {i["id"] for i in outsider.call("GET", "/images", 200).json()}
    outsider.call("GET", f"/images/{shared['id']}", 404)
    refused = outsider.call("POST", "/instances", 404, json={"name": "x", "flavor": 1, "image": "lab",
                                                             "key": outsider.key}).json()
    assert "image" in refused["error"]["fields"]
    student.call("DELETE", f"/images/{shared['id']}", 403)   # a member sees it; its teacher deletes it
    teacher.call("DELETE", f"/images/{shared['id']}", 200)


def test_a_flavor_below_the_image_minimums_is_400_naming_flavor(course, disk):
    _, _, student, _ = course
    image, answer = upload(student, "needy", disk, min_memory_mib=512, min_disk_gib=2)
    assert answer.json()["state"] == "active"
    for flavor in ("small", "medium"):  # 128 MiB / 1 GiB, 256 MiB / 2 GiB
        refused = student.call("POST", "/instances", 400, json={
            "name": "too-small", "flavor": flavor_id(student, flavor), "image": image["id"], "key": student.key}).json()
        assert list(refused["error"]["fields"]) == ["flavor"], refused
    assert "too-small" not in {i["name"] for i in student.call("GET", "/instances", 200).json()}


def test_save_a_stopped_instance_as_an_image_and_boot_it(stack, course):
    project, teacher, student, _ = course
    vm = create(student, "to-save")
    refused = student.call("POST", f"/instances/{vm['id']}/save-image", 409, json={"name": "saved"}).json()
    assert refused["error"]["fields"] == {"state": ["running, not stopped"]}
    student.call("POST", f"/instances/{vm['id']}/stop", 202)
    wait_state(student, vm["id"], ("stopped",))
    refused = student.call("POST", f"/instances/{vm['id']}/save-image", 403, json={"name": "saved"}).json()
    assert "project" in refused["error"]["fields"]   # a student may not share with the course
    home = cli_home(stack, teacher)   # its teacher saves it for the course
    said = ok(run(home, "instance", "save-image", vm["id"], "saved"))
    assert "saved version 1" in said and "active" in said
    saved = next(i for i in student.call("GET", "/images", 200).json() if i["name"] == "saved")
    assert (saved["visibility"], saved["project"], saved["boot"]) == ("project", project, "kernel")
    booted = create(student, "from-saved", image="saved")
    assert booted["state"] == "running" and booted["image"] == saved["id"]
    mine = student.call("POST", f"/instances/{vm['id']}/save-image", 202,
                        json={"name": "mine", "visibility": "private"}).json()
    assert mine["state"] == "saving"
    assert student.wait_for(f"/images/{mine['id']}", lambda r: r.json()["state"] != "saving").json()["state"] == \
        "active"
    for instance in (vm, booted):
        student.call("DELETE", f"/instances/{instance['id']}", 202)


def test_the_portal_lists_images_saves_a_stopped_instance_and_deletes(stack, course, disk):
    project, teacher, student, outsider = course
    mine, _ = upload(student, "portal-mine", disk)
    portal = Portal(stack.url, student.token)
    _resp, page = portal.get("/images")
    row = next(tr for tr in page.by_id("images").find_all("tr") if tr.get("data-image") == str(mine["id"]))
    cells = [c.text() for c in row.children if not isinstance(c, str) and c.tag in ("th", "td")]
    assert cells[:4] == ["portal-mine", "1", "active", "private"]

    vm = create(student, "portal-save")
    _resp, page = portal.get(f"/instances/{vm['id']}")
    assert page.find(id="save-image-form") is None   # offered only once stopped
    student.call("POST", f"/instances/{vm['id']}/stop", 202)
    wait_state(student, vm["id"], ("stopped",))
    _resp, page = portal.get(f"/instances/{vm['id']}")
    resp, refused = portal.submit(page, f"/instances/{vm['id']}/save-image", {"name": "from-portal",
                                                                              "visibility": "project"})
    assert resp.status_code == 403 and "you do not manage this project" in refused.by_id("save-image").text()
    resp, _ = portal.submit(page, f"/instances/{vm['id']}/save-image", {"name": "Bad Name", "visibility": "private"})
    assert resp.status_code == 400
    resp, _ = portal.submit(page, f"/instances/{vm['id']}/save-image", {"name": "from-portal",
                                                                         "visibility": "private"})
    assert resp.status_code == 303 and resp.headers["Location"] == "/images"
    saved = next(i for i in student.call("GET", "/images", 200).json() if i["name"] == "from-portal")
    student.wait_for(f"/images/{saved['id']}", lambda r: r.json()["state"] == "active")

    _resp, page = portal.get("/images")
    resp, _ = portal.post(f"/images/{mine['id']}/delete", page)
    assert resp.status_code == 303
    student.call("GET", f"/images/{mine['id']}", 404)
    outsider_portal = Portal(stack.url, outsider.token)
    _resp, page = outsider_portal.get("/images")
    resp, refused = outsider_portal.post(f"/images/{saved['id']}/delete", page)
    assert resp.status_code == 404   # not theirs to see
    student.call("DELETE", f"/instances/{vm['id']}", 202)


def test_an_upload_with_its_own_kernel_and_ramdisk_boots_them(stack, course, disk, tmp_path):
    _, _, student, _ = course
    kernel, ramdisk = tmp_path / "vmlinux", tmp_path / "initrd.img"
    kernel.write_bytes(b"\x7fELF" + os.urandom(4096))
    ramdisk.write_bytes(b"070701" + os.urandom(2048))
    home = cli_home(stack, student)
    said = ok(run(home, "image", "upload", "kernelled", disk, "--kernel", str(kernel), "--ramdisk", str(ramdisk),
                  "--cmdline", "console=ttyS0 quiet"))
    assert "kernelled version 1" in said and "active" in said
    image = next(i for i in student.call("GET", "/images", 200).json() if i["name"] == "kernelled")
    assert image["boot"] == "kernel"
    booted = create(student, "kernel-boot", image="kernelled")
    assert booted["state"] == "running" and booted["image"] == image["id"]
    refused = run(home, "image", "upload", "no-kernel", disk, "--ramdisk", str(ramdisk))
    assert refused.returncode != 0 and "--kernel" in refused.stderr
    refused = run(home, "image", "upload", "bad-kernel", disk, "--kernel", str(ramdisk))
    assert refused.returncode != 0 and "kernel" in refused.stderr
    student.call("DELETE", f"/instances/{booted['id']}", 202)


def test_the_portal_uploads_an_image_from_a_form(stack, course, disk, tmp_path):
    _, _, student, _ = course
    portal = Portal(stack.url, student.token)
    _resp, page = portal.get("/images")
    text = tmp_path / "notes.txt"
    text.write_text("not a disk\n" * 100)
    with open(text, "rb") as bad:
        resp, refused = portal.submit(page, "/images/upload", {"name": "portal-bad", "visibility": "private"},
                                      files={"file": ("notes.txt", bad)})
    assert resp.status_code == 400 and "expected a qcow2 image" in refused.by_id("upload").text()
    with open(disk, "rb") as body:  # 3 MiB: past the portal's 1 MiB limit for other forms
        resp, _ = portal.submit(page, "/images/upload", {"name": "portal-up", "visibility": "private",
                                                          "min_memory_mib": "64"}, files={"file": ("d.qcow2", body)})
    assert resp.status_code == 303 and resp.headers["Location"] == "/images"
    made = next(i for i in student.call("GET", "/images", 200).json() if i["name"] == "portal-up")
    assert (made["state"], made["file_bytes"], made["min_memory_mib"]) == ("active", os.path.getsize(disk), 64)
    _resp, form = portal.get("/instances/new")
    offered = {o.text() for o in form.find("select", id="image").find_all("option")}
    assert "portal-up" in offered and "portal-bad" not in offered  # only what can boot
