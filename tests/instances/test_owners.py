"""The instances of a deleted user: handed over (renamed where the new owner holds the name) or
deleted by labcloud itself; running either twice changes nothing more."""
from sqlalchemy import update

from services.instances import access, instance_store, lifecycle, owners, saga
from services.instances.models import Instance
from tests.instances.fakes import ACTOR, CLASSMATE, NOW, FakeCloud, new_instance, running_instance


def actions(session, instance_id):
    return [(a.action, a.user_id, a.result, a.message) for a in instance_store.list_actions(session, instance_id)]


def test_transfer_hands_every_live_instance_to_the_new_owner(session):
    cloud = FakeCloud()
    running = running_instance(session, cloud, "web")
    pending = new_instance(session, "db")
    gone = new_instance(session, "old")
    lifecycle.request_delete(session, ACTOR, gone.id)
    assert owners.transfer_instances(session, ACTOR["id"], CLASSMATE["id"], "ada") == [running.id, pending.id]
    assert sorted(i.name for i in access.list_instances(session, CLASSMATE)) == ["db", "web"]
    assert access.list_instances(session, ACTOR, include_deleted=True)[0].id == gone.id  # history stays
    assert actions(session, running.id)[-1] == (
        "transfer", None, "success", "its owner ada (user 7) was deleted; now owned by user 8")
    assert owners.transfer_instances(session, ACTOR["id"], CLASSMATE["id"], "ada") == []  # redelivered


def test_a_name_the_new_owner_holds_gets_the_id_appended(session):
    mine = new_instance(session, "web")
    new_instance(session, "web", actor=CLASSMATE)
    owners.transfer_instances(session, ACTOR["id"], CLASSMATE["id"], "ada")
    session.refresh(mine)
    assert (mine.user_id, mine.name, mine.name_key) == (CLASSMATE["id"], f"web-{mine.id[:6]}", f"web-{mine.id[:6]}")
    assert actions(session, mine.id)[-1][3].endswith(
        ", renamed from web (the new owner has an instance of that name)")


def test_a_long_name_is_cut_to_fit_the_suffix(session):
    long_name = "n" * 63
    mine = new_instance(session, long_name)
    new_instance(session, long_name, actor=CLASSMATE)
    owners.transfer_instances(session, ACTOR["id"], CLASSMATE["id"], "ada")
    session.refresh(mine)
    assert mine.name == "n" * 56 + "-" + mine.id[:6] and len(mine.name) == 63


def test_a_deleting_instance_moves_keeping_its_name_held(session):
    cloud = FakeCloud()
    inst = running_instance(session, cloud, "web")
    lifecycle.request_delete(session, ACTOR, inst.id)
    owners.transfer_instances(session, ACTOR["id"], CLASSMATE["id"], "ada")
    session.refresh(inst)
    assert (inst.user_id, inst.state, inst.name_key) == (CLASSMATE["id"], "deleting", "web")


def test_delete_asks_for_the_delete_of_each_as_labcloud_itself(session):
    cloud = FakeCloud()
    running = running_instance(session, cloud, "web")
    pending = new_instance(session, "db")
    other = new_instance(session, "bobs", actor=CLASSMATE)
    moved = owners.delete_instances(session, ACTOR["id"], "ada")
    assert [(i.id, i.state) for i in moved] == [(running.id, "deleting"), (pending.id, "deleted")]
    assert actions(session, running.id)[1:] == [("delete", None, "in_progress", "its owner ada (user 7) was deleted")]
    assert owners.delete_instances(session, ACTOR["id"], "ada") == []   # redelivered: nothing to do
    assert len(actions(session, running.id)) == 2
    assert saga.run_delete(session, running.id, cloud.peers, lambda: NOW) == "deleted"
    assert cloud.empty()
    assert session.get(Instance, other.id).state == "pending"


def test_an_instance_in_error_is_deleted_too(session):
    inst = new_instance(session)
    session.execute(update(Instance).where(Instance.id == inst.id).values(state="error", host="h1"))
    session.commit()
    assert [i.state for i in owners.delete_instances(session, ACTOR["id"], "ada")] == ["deleting"]
