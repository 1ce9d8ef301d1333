"""handoff.notify.messages: who hears what, in which words (pure)."""

from __future__ import annotations

from datetime import datetime, timezone

from handoff.notify.messages import (
    MAX_LISTED,
    Blocked,
    Team,
    UpstreamRun,
    blocked_messages,
    resumed_message,
    sla_miss_messages,
)

RUN = datetime(2026, 11, 24, 3, 0, tzinfo=timezone.utc)
TEAMS = {
    "marketplace": Team("marketplace", "team-marketplace", "#marketplace-data"),
    "finance": Team("finance", "team-finance", "#finance-data"),
    "marketing": Team("marketing", "team-marketing", "#marketing-data"),
}
UPSTREAM = UpstreamRun("marketplace", "marketplace__daily", "mrt_orders", RUN, "scheduled__2026-11-24T03:00:00+00:00",
                       owner="team-orders", slack="")
FINANCE = Blocked("finance", "finance__daily", (datetime(2026, 11, 24, 5, tzinfo=timezone.utc),),
                  ("mrt_revenue", "stg_marketplace_orders"), ("wait__marketplace__mrt_orders",))
MARKETING = Blocked("marketing", "marketing__daily", (), ("mrt_campaign_performance",), (),
                    via=("marketplace.mrt_orders", "finance.mrt_revenue"))


def _by_channel(messages):
    return {m.channel: m for m in messages}


def test_blocked_one_message_per_consuming_channel_and_one_to_the_owner_naming_the_blocked_tasks():
    messages = _by_channel(blocked_messages(UPSTREAM, cause="failed after 3 tries", blocked=[FINANCE, MARKETING],
                                            teams=TEAMS))
    assert set(messages) == {"#marketplace-data", "#finance-data", "#marketing-data"}
    owner, finance, marketing = messages["#marketplace-data"], messages["#finance-data"], messages["#marketing-data"]
    assert owner.roles == {"owner"} and owner.domain == "marketplace"
    assert "finance (team-finance, #finance-data): 2 tasks in `finance__daily`" in owner.text
    assert "marketing (team-marketing, #marketing-data): 1 task in `marketing__daily`" in owner.text
    assert finance.roles == {"consumer"} and finance.domain == "finance"
    assert "`finance__daily` run of 2026-11-24 05:00 UTC: `mrt_revenue`, `stg_marketplace_orders`" in finance.text
    assert "waiting in `wait__marketplace__mrt_orders`" in finance.text
    assert "Upstream owner: team-orders (#marketplace-data)" in finance.text  # the model's owner, not the domain's
    assert "resumes the blocked runs by itself" in finance.text
    assert "(via finance.mrt_revenue)" in marketing.text
    for m in messages.values():
        assert m.kind == "blocked" and m.subject == UPSTREAM
        assert m.text.startswith("Blocked: marketplace.mrt_orders failed after 3 tries\n")
        header, section, context = m.blocks
        assert header["type"] == "header" and header["text"]["type"] == "plain_text"
        assert section["text"]["text"] in m.text  # the plain text carries the same words
        assert m.row()["status"] == "pending" and m.row()["subject_date"] == RUN


def test_a_channel_shared_by_the_owner_and_a_consumer_gets_one_message_saying_both():
    teams = {**TEAMS, "finance": Team("finance", "team-finance", "#marketplace-data")}
    messages = blocked_messages(UPSTREAM, cause="failed", blocked=[FINANCE], teams=teams)
    [only] = messages
    assert only.roles == {"owner", "consumer"} and only.channel == "#marketplace-data"
    assert "*Blocked in finance*" in only.text and "fix it, then clear the task" in only.text


def test_nobody_blocked_means_no_message():
    assert blocked_messages(UPSTREAM, cause="failed", blocked=[], teams=TEAMS) == []


def test_a_muted_domain_gets_its_row_marked_muted():
    teams = {**TEAMS, "finance": Team("finance", "team-finance", "#finance-data", frozenset({"blocked"}))}
    messages = _by_channel(blocked_messages(UPSTREAM, cause="failed", blocked=[FINANCE, MARKETING], teams=teams))
    assert messages["#finance-data"].muted and messages["#finance-data"].row()["status"] == "muted"
    assert not messages["#marketing-data"].muted and not messages["#marketplace-data"].muted
    # muting 'sla_miss' does not mute 'blocked'
    teams = {**TEAMS, "finance": Team("finance", "team-finance", "#finance-data", frozenset({"sla_miss"}))}
    assert not _by_channel(blocked_messages(UPSTREAM, cause="failed", blocked=[FINANCE], teams=teams))[
        "#finance-data"].muted


def test_names_and_owners_are_escaped_so_nothing_can_ping_or_link():
    teams = {**TEAMS, "finance": Team("finance", "<!channel> & <https://evil|x>", "#finance-data")}
    upstream = UpstreamRun("marketplace", "marketplace__daily", "mrt_orders", RUN, owner="<!here>")
    text = " ".join(m.text for m in blocked_messages(upstream, cause="failed", blocked=[FINANCE], teams=teams))
    blocks = str([m.blocks for m in blocked_messages(upstream, cause="failed", blocked=[FINANCE], teams=teams)])
    for found in (text, blocks):
        assert "<!" not in found and "<https" not in found
        assert "&lt;!here&gt;" in found and "&lt;!channel&gt; &amp; &lt;https://evil|x&gt;" in found


def test_long_lists_are_capped_and_counted():
    many = Blocked("finance", "finance__daily", (), tuple(f"model_{i:03d}" for i in range(60)), ())
    [_, finance] = blocked_messages(UPSTREAM, cause="failed", blocked=[many], teams=TEAMS)
    assert f"and {60 - MAX_LISTED} more" in finance.text and "model_059" not in finance.text
    assert all(len(b["text"]["text"]) <= 3000 for b in finance.blocks if b["type"] == "section")


def test_resumed_follows_up_each_blocked_channel_with_what_recovery_released():
    released = [("finance__daily", "scheduled__2026-11-24T05:00:00+00:00", "wait__marketplace__mrt_orders")]
    later = datetime(2026, 11, 24, 9, 12, 30, tzinfo=timezone.utc)
    finance = resumed_message({"channel": "#finance-data", "domain": "finance", "roles": "consumer",
                               "subject_task_id": "mrt_orders"}, UPSTREAM, succeeded=later, released=released,
                              teams=TEAMS)
    assert finance.kind == "resumed" and finance.channel == "#finance-data"
    assert "succeeded for the run of 2026-11-24 03:00 UTC at 2026-11-24 09:12:30 UTC" in finance.text
    assert "`wait__marketplace__mrt_orders`" in finance.text and "running again" in finance.text
    owner = resumed_message({"channel": "#marketplace-data", "domain": "marketplace", "roles": "owner",
                             "subject_task_id": "stg_orders"}, UPSTREAM, succeeded=later, released=released,
                            teams=TEAMS)
    assert owner.subject.task_id == "stg_orders"  # the follow-up keeps the blocked message's subject
    assert "(it had blocked `stg_orders`)" in owner.text and "1 sensor in `finance__daily`" in owner.text


def test_sla_miss_goes_to_the_owner_and_every_reading_domain():
    model = UpstreamRun("finance", "finance__daily", "mrt_revenue", datetime(2026, 11, 24, 5, tzinfo=timezone.utc))
    deadline = datetime(2026, 11, 24, 6, 30, tzinfo=timezone.utc)
    messages = _by_channel(sla_miss_messages(model, sla="available_by 06:30 UTC", deadline=deadline, state="running",
                                             consumers=[Blocked("marketing", "marketing__daily", (),
                                                                ("mrt_campaign_performance",), ("wait__finance__mrt_revenue",))],
                                             teams=TEAMS))
    assert set(messages) == {"#finance-data", "#marketing-data"}
    for m in messages.values():
        assert m.kind == "sla_miss"
        assert "missed its SLA: available_by 06:30 UTC, due 2026-11-24 06:30 UTC" in m.text
        assert "it was *running*" in m.text
    assert "Read by marketing" in messages["#finance-data"].text
    assert "`handoff sla finance.mrt_revenue`" in messages["#marketing-data"].text
