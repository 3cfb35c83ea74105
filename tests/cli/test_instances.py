"""`labcloud instance ...`, `flavor list`, `image list` against the fake gateway: names to ids,
--wait following the states to the end (exit 1 with the reason on `error`), -f value -c FIELD."""
import json

FLAVORS = [{"id": 1, "name": "small", "vcpus": 1, "memory_mib": 128, "disk_gib": 1, "cpu_weight": 256,
            "cpu_cap_percent": 50}]
IMAGES = [{"id": 3, "name": "tiny", "boot": "kernel", "format": "qcow2", "size_bytes": 1, "min_disk_gib": 1,
           "created_at": "2030-01-01T10:00:00+00:00"}]
KEYS = [{"id": 9, "name": "laptop"}]


def vm(state, **extra):
    return dict({"id": "0f0e", "name": "vm1", "state": state, "ip": "10.0.0.5", "ssh": None, "project": 4,
                 "host": "h1", "reason": None, "created_at": "2030-01-01T10:00:00+00:00"}, **extra)


def states(api, path, *answers):
    """GET `path` answers each of `answers` in turn, then the last one again."""
    queue = list(answers)
    api.reply_with("GET", path, lambda _seen: (200, queue.pop(0) if len(queue) > 1 else queue[0], {}))


def catalogue(api):
    api.reply("GET", "/flavors", FLAVORS)
    api.reply("GET", "/images", IMAGES)
    api.reply("GET", "/keys", KEYS)


def test_create_with_wait_follows_the_states_and_ends_with_the_final_one(api, labcloud):
    catalogue(api)
    api.reply("POST", "/instances", vm("pending"), status=202)
    states(api, "/instances/0f0e", vm("building"), vm("running", ssh={"host": "127.0.0.1", "port": 2201}))
    made = labcloud("instance", "create", "vm1", "--flavor", "small", "--image", "tiny", "--key", "laptop", "--wait")
    assert made.exit_code == 0, made.output
    # A name goes as it is: the server boots its newest version the user may see.
    assert api.body("POST", "/instances") == {"name": "vm1", "flavor": 1, "image": "tiny", "key": 9}
    assert made.stdout.strip() == "vm1: running, ssh port 2201"
    assert "vm1: building" in made.stderr and "vm1: running" in made.stderr  # piped: one line per state


def test_an_image_id_goes_as_a_number(api, labcloud):
    catalogue(api)
    api.reply("POST", "/instances", vm("pending"), status=202)
    made = labcloud("instance", "create", "vm1", "--flavor", "small", "--image", "3", "--key", "laptop")
    assert made.exit_code == 0, made.output
    assert api.body("POST", "/instances") == {"name": "vm1", "flavor": 1, "image": 3, "key": 9}


def test_a_wait_that_ends_in_error_exits_1_with_the_reason(api, labcloud):
    catalogue(api)
    api.reply("POST", "/instances", vm("pending"), status=202)
    states(api, "/instances/0f0e", vm("error", reason="no host has room for 128 MiB"))
    made = labcloud("instance", "create", "vm1", "--flavor", "1", "--image", "3", "--key", "9", "--wait")
    assert made.exit_code == 1
    assert made.stdout.strip() == "vm1: error (no host has room for 128 MiB)"


def test_without_wait_the_accepted_state_is_shown_and_json_is_the_api_answer(api, labcloud):
    api.reply("GET", "/instances", [vm("running")])
    api.reply("POST", "/instances/0f0e/stop", vm("stopping"), status=202)
    stopped = labcloud("instance", "stop", "vm1")
    assert stopped.exit_code == 0 and stopped.stdout.startswith("vm1: stopping (accepted")
    assert json.loads(labcloud("instance", "stop", "vm1", "--json").stdout) == vm("stopping")


def test_delete_with_wait_ends_when_the_instance_is_gone(api, labcloud):
    api.reply("GET", "/instances", [vm("running")])
    api.reply("DELETE", "/instances/0f0e", vm("deleting"), status=202)
    api.error("GET", "/instances/0f0e", 404, "no such instance", code="not_found")
    gone = labcloud("instance", "delete", "vm1", "--wait")
    assert gone.exit_code == 0 and gone.stdout.strip() == "vm1: deleted"


def test_value_format_prints_bare_fields_for_scripts(api, labcloud):
    api.reply("GET", "/instances", [vm("running"), dict(vm("stopped"), id="1a2b", name="vm2", ip=None)])
    listed = labcloud("instance", "list", "-f", "value", "-c", "name", "-c", "state")
    assert listed.exit_code == 0 and listed.stdout.splitlines() == ["vm1 running", "vm2 stopped"]
    assert labcloud("instance", "list", "-c", "ip").stdout.splitlines() == ["10.0.0.5", ""]
    wrong = labcloud("instance", "list", "-f", "value", "-c", "nope")
    assert wrong.exit_code == 2 and "no field nope" in wrong.stderr
    api.reply("GET", "/flavors", FLAVORS)
    assert labcloud("flavor", "list", "-f", "value", "-c", "name").stdout == "small\n"
    api.reply("GET", "/images", IMAGES)
    assert json.loads(labcloud("image", "list", "-f", "json").stdout) == IMAGES


def test_unknown_names_and_api_refusals_are_one_line(api, labcloud):
    catalogue(api)
    unknown = labcloud("instance", "create", "vm1", "--flavor", "nope", "--image", "tiny", "--key", "laptop")
    assert unknown.exit_code == 1 and unknown.stderr == "error: no flavor named nope\n"
    api.error("POST", "/instances", 400, "invalid input", {"name": ["must match ^[a-z0-9-]+$"]})
    refused = labcloud("instance", "create", "Bad!", "--flavor", "small", "--image", "tiny", "--key", "laptop")
    assert refused.exit_code == 1 and refused.stderr == "error: name: must match ^[a-z0-9-]+$\n"
    api.reply("GET", "/instances", [])
    assert labcloud("instance", "console", "ghost").stderr == "error: no instance named ghost\n"


def test_an_ended_session_is_one_line_without_a_terminal(api, labcloud):
    api.error("GET", "/instances", 401, "token expired", code="unauthorized")
    ended = labcloud("instance", "list")
    assert ended.exit_code == 1
    assert ended.stderr.count("\n") == 1 and "your session has ended" in ended.stderr and "labcloud login" in ended.stderr


def test_set_sends_only_the_named_shares_and_shows_them(api, labcloud):
    api.reply("GET", "/instances", [vm("running")])
    changed = vm("running", cpu_weight=512, cpu_cap=35, memory_mib=192, bandwidth_in_kib=0, bandwidth_out_kib=1024)
    api.reply("PATCH", "/instances/0f0e", changed)
    made = labcloud("instance", "set", "vm1", "--cpu-weight", "512", "--cpu-cap", "35", "--memory", "192",
                    "--bandwidth-out", "1024")
    assert made.exit_code == 0, made.output
    assert api.body("PATCH", "/instances/0f0e") == {"cpu_weight": 512, "cpu_cap": 35, "memory_mib": 192,
                                                    "bandwidth_out_kib": 1024}
    header, row = made.stdout.strip().splitlines()[:2]
    assert header.split() == ["NAME", "CPU_WEIGHT", "CPU_CAP_%", "MEMORY_MIB", "IN_KIB/S", "OUT_KIB/S"]
    assert row.split() == ["vm1", "512", "35", "192", "0", "1024"]
    assert labcloud("instance", "set", "vm1", "--cpu-cap", "35", "-f", "value", "-c", "cpu_cap").stdout == "35\n"


def test_set_without_a_share_is_a_usage_error_and_a_refusal_is_one_line(api, labcloud):
    api.reply("GET", "/instances", [vm("running")])
    nothing = labcloud("instance", "set", "vm1")
    assert nothing.exit_code == 2 and "give at least one of --cpu-weight" in nothing.output
    api.error("PATCH", "/instances/0f0e", 400, "memory_mib: at most 256, flavor small's maximum",
              code="invalid_input", fields={"memory_mib": ["at most 256, flavor small's maximum"]})
    refused = labcloud("instance", "set", "vm1", "--memory", "4096")
    assert refused.exit_code == 1
    assert "memory_mib" in refused.stderr and "at most 256" in refused.stderr


def test_create_in_a_placement_group_with_anti_affinity(api, labcloud):
    catalogue(api)
    api.reply("POST", "/instances", vm("pending"), status=202)
    made = labcloud("instance", "create", "vm1", "--flavor", "small", "--image", "tiny", "--key", "laptop",
                    "--group", "web", "--anti-affinity")
    assert made.exit_code == 0, made.output
    assert api.body("POST", "/instances") == {"name": "vm1", "flavor": 1, "image": "tiny", "key": 9, "group": "web",
                                              "anti_affinity": True}


def test_resize_asks_before_a_restart_and_yes_confirms_it(api, labcloud):
    catalogue(api)
    api.reply("GET", "/instances", [vm("running")])
    seen = []

    def resize(request):
        seen.append(json.loads(request["body"]))
        if not seen[-1].get("confirm_restart"):
            return 409, {"error": {"code": "conflict", "message": "resizing vm1 from small to large needs a restart "
                         "of the guest: send confirm_restart=true, or stop it first",
                         "fields": {"confirm_restart": ["needed"]}}}, {}
        return 202, vm("resizing"), {}
    api.reply_with("POST", "/instances/0f0e/resize", resize)
    declined = labcloud("instance", "resize", "vm1", "--flavor", "small", input="n\n")
    assert declined.exit_code == 1 and "needs a restart of the guest. Restart it now?" in declined.stderr
    assert seen == [{"flavor": 1}]
    accepted = labcloud("instance", "resize", "vm1", "--flavor", "small", "--yes")
    assert accepted.exit_code == 0, accepted.output
    assert seen[1:] == [{"flavor": 1}, {"flavor": 1, "confirm_restart": True}]
    assert accepted.stdout.startswith("vm1: resizing (accepted")
