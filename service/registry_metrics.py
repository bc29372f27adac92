"""Metrics read from the registry at scrape time, so they are the registry's truth.

The job outcome counter, the queued and running gauges and the active version are
the same whichever worker answers the scrape, right after the registry records a
change (a job that the API reports finished is already counted), and across a
restart: nothing is kept in a process that could die or miss an update.
"""

from __future__ import annotations

from collections.abc import Iterator

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from .registry import JOB_FINISHED, Registry


class RegistryCollector(Collector):
    """Training jobs by outcome and state, and the active version, from one registry."""

    def __init__(self, registry: Registry) -> None:
        self.registry = registry

    def collect(self) -> Iterator[Metric]:
        counts = self.registry.job_counts()
        outcomes = CounterMetricFamily(
            "backprop_training_jobs",
            "Training jobs that ended, by outcome (counted in the registry, every worker).",
            labels=["outcome"],
        )
        for outcome in JOB_FINISHED:
            outcomes.add_metric([outcome], counts.get(outcome, 0))
        yield outcomes
        yield GaugeMetricFamily(
            "backprop_training_jobs_queued",
            "Training jobs waiting in the queue (from the registry).",
            value=counts.get("queued", 0),
        )
        yield GaugeMetricFamily(
            "backprop_training_jobs_running",
            "Training jobs running now (from the registry).",
            value=counts.get("running", 0),
        )
        active = GaugeMetricFamily(
            "backprop_active_version_info",
            "1 for the registry's active version (what every worker converges on).",
            labels=["version"],
        )
        version = self.registry.active_version()
        if version is not None:
            active.add_metric([version], 1)
        yield active


def registry_exposition(registry: Registry) -> bytes:
    """The registry's metrics in the Prometheus text format."""
    target = CollectorRegistry(auto_describe=False)
    target.register(RegistryCollector(registry))
    return generate_latest(target)
