"""Checks the observability files against the code (run by deploy/helm-check.sh): the collector
config and alert rules parse, the dashboard is JSON, and every metric they name is one the kit
defines (services/kit/src/metrics.rs), under the name the collector's Prometheus exporter gives
it (dots to underscores, `_milliseconds` for the ms histograms, `_total` for counters)."""

import json
import pathlib
import re
import sys

import yaml

top = pathlib.Path(__file__).resolve().parents[2]
here = top / "deploy" / "observability"
source = (top / "services" / "kit" / "src" / "metrics.rs").read_text()

defined = set()
for name in re.findall(r'ms\(\s*"([a-z_.]+)"', source):
    defined.add(name.replace(".", "_") + "_milliseconds")
for name in re.findall(r'u64_counter\("([a-z_.]+)"\)', source):
    defined.add(name.replace(".", "_") + "_total")
if len(defined) < 5:
    sys.exit(f"found only {sorted(defined)} in metrics.rs")

# the attribute names (labels), which the metric-name pattern below would also match
labels = {k.replace(".", "_") for k in re.findall(r'KeyValue::new\("([a-z_.]+)"', source)}

yaml.safe_load((here / "otel-collector.yaml").read_text())
rules = yaml.safe_load((here / "alerts.yaml").read_text())
dashboard = json.loads((here / "dashboard.json").read_text())

exprs = [r["expr"] for g in rules["groups"] for r in g["rules"]]
exprs += [t["expr"] for p in dashboard["panels"] for t in p["targets"]]
used = set()
for expr in exprs:
    for m in re.findall(r"\b((?:rpc|crm)_[a-z_]+)", expr):
        if m not in labels:
            used.add(re.sub(r"_(bucket|count|sum)$", "", m))
unknown = sorted(used - defined)
if unknown:
    sys.exit(f"metrics named in the dashboard or alerts but not defined in metrics.rs: {unknown}")
unused = sorted(defined - used)
if unused:
    sys.exit(f"metrics defined but on no dashboard panel or alert: {unused}")
print(f"[helm-check] observability: {len(exprs)} queries over {len(defined)} metrics, all defined")
