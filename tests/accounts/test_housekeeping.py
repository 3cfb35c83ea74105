"""Pruning rows nobody can use any more."""
from sqlalchemy import select

from services.accounts import housekeeping, password_links, rate_limits, tokens
from services.accounts.dependencies import Settings
from services.accounts.models import PasswordLink, RateLimit, Token

SETTINGS = Settings(rate_limit_window=60, password_link_hours=72)


def test_prune_drops_expired_tokens_finished_windows_and_spent_links(session, hasher, clock, make_user):
    ada = make_user("ada", password="wonderland-42")
    make_user("bob", password="wonderland-42")  # (issuing ada's new token prunes her own)
    old = tokens.issue_token(session, hasher, "bob", "wonderland-42", clock(), 60)
    rate_limits.hit(session, "username", "ada", 10, 60, clock())
    old_link = password_links.create_link(session, ada.id, SETTINGS, clock())
    session.commit()
    clock.advance(hours=72)
    live = tokens.issue_token(session, hasher, "ada", "wonderland-42", clock(), 3600)
    rate_limits.hit(session, "address", "192.0.2.1", 10, 60, clock())
    live_link = password_links.create_link(session, ada.id, SETTINGS, clock())
    session.commit()
    assert housekeeping.prune(session, SETTINGS, clock()) == {
        "tokens": 1, "rate_limits": 1, "password_links": 1}
    assert session.scalars(select(Token.id)).all() == [live["id"]] != [old["id"]]
    assert session.scalars(select(RateLimit.kind)).all() == ["address"]
    assert len(session.scalars(select(PasswordLink)).all()) == 1
    assert live_link != old_link
    assert housekeeping.prune(session, SETTINGS, clock()) == {
        "tokens": 0, "rate_limits": 0, "password_links": 0}
