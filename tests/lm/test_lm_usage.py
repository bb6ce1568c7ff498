"""Usage stats: recording, merging, JSON, the process-wide registry."""

from __future__ import annotations

import json

from synaray.lm.usage import UsageStats, get_usage, record_usage, reset_usage


def test_record_and_merge():
    a, b = UsageStats(model="m"), UsageStats(model="m")
    a.record(ok=True, requests=2, prompt_tokens=5, completion_tokens=1, cost=0.5, latency_s=1.0)
    b.record(ok=False, requests=1, error_type="LMTimeout")
    b.record(ok=True, cached=True)
    merged = UsageStats(model="m").merge(a).merge(b)
    assert (merged.calls, merged.requests, merged.cache_hits, merged.failures) == (3, 3, 1, 1)
    assert merged.failures_by_type == {"LMTimeout": 1}
    assert merged.total_tokens == 6 and merged.cost == 0.5


def test_merge_of_shards_equals_one_stream():
    whole, shards = UsageStats(model="m"), [UsageStats(model="m") for _ in range(3)]
    for i in range(30):
        call = {"ok": i % 4 != 0, "prompt_tokens": i, "error_type": "LMServerError"}
        whole.record(**call)
        shards[i % 3].record(**call)
    total = UsageStats(model="m")
    for shard in shards:
        total.merge(UsageStats.from_dict(json.loads(json.dumps(shard.to_dict()))))
    assert total.to_dict() == whole.to_dict()


def test_registry_sums_instances_of_one_model():
    reset_usage()
    first, second = UsageStats(model="reg"), UsageStats(model="reg")
    record_usage(first, ok=True, prompt_tokens=2)
    record_usage(second, ok=False, error_type="LMOutputError")
    usage = get_usage()
    assert usage["reg"].calls == 2 and usage["reg"].failures == 1
    usage["reg"].calls = 99  # a copy
    assert get_usage()["reg"].calls == 2
    reset_usage()
    assert get_usage() == {}
