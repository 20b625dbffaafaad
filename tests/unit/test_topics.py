"""The topics the worker creates: every configured name, co-partitioned, compacted where
a topic holds latest values. Creating them on a broker is the integration tier's job."""

from __future__ import annotations

from streams.settings import WorkerSettings
from streams.topics import wanted_topics


def test_every_configured_topic_is_created_once_with_its_partitions_and_cleanup() -> None:
    settings = WorkerSettings(partitions=6, replication_factor=1, app_id="app-x")
    names = settings.topics.model_dump()
    changelogs = [f"app-x-{table}-changelog" for table in ("customers", "centroids", "positions")]
    wanted = {t.name: t for t in wanted_topics(settings)}
    assert len(wanted) == len(wanted_topics(settings))  # none twice
    assert sorted(wanted) == sorted([*names.values(), *changelogs])
    single = {names["models"], names["retrain_requests"]}
    for name, topic in wanted.items():
        assert topic.num_partitions == (1 if name in single else 6), name
        assert topic.replication_factor == 1
    compacted = {n for n, t in wanted.items() if t.topic_configs.get("cleanup.policy") == "compact"}
    assert compacted == {names["assignments"], names["models"], names["feedback_latest"],
                         *changelogs}  # fmt: skip
    assert int(wanted[names["models"]].topic_configs["max.message.bytes"]) >= 8 * 1024 * 1024


def test_renamed_topics_are_the_ones_created() -> None:
    settings = WorkerSettings(topics={"events": "in-x", "band_changes": "bands-x"})
    created = {t.name for t in wanted_topics(settings)}
    assert {"in-x", "bands-x"} <= created and "customer-events" not in created


def test_the_changelog_names_are_the_ones_faust_gives_the_tables() -> None:
    import faust

    from streams.state.tables import TABLES, changelog_topic

    app = faust.App("app-y", autodiscover=False)
    for name in TABLES:
        table = app.Table(name, key_type=str, partitions=3)
        assert table.changelog_topic.get_topic_name() == changelog_topic("app-y", name)
