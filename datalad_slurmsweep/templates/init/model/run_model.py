"""A small model standing in for a simulation: it reads its parameters from
COMPONENT_PATH/params/network.json and its run settings from the case's
configuration file, computes for a moment, and writes its metrics into
OUTPUT_DIR/metrics.json (a JSON object of scalars, which
``datalad slurm-report`` collects into results.csv)."""
import json
import math
import os
import sys
import time

components = os.environ.get("COMPONENT_PATH", "model/components")
out = os.environ.get("OUTPUT_DIR", "runs/single")
with open(sys.argv[1]) as f:
    settings = json.load(f)
with open(os.path.join(components, "params", "network.json")) as f:
    params = json.load(f)

gain, tau = float(params["gain"]), float(params["tau"])
# Some work and some memory, so that the resource figures show something.
state = bytearray(int(settings.get("memory_mb", 20)) * 1024 * 1024)
deadline = time.time() + float(settings.get("seconds", 0.5))
steps = 0
while time.time() < deadline:
    steps += 1

rate = 40.0 * gain * math.exp(-tau / 25.0) + params.get("noise", 0.0)
metrics = {
    "firing_rate": round(rate, 4),
    "synchrony": round(1.0 / (1.0 + math.exp(-(gain - 1.2) * 4)) * math.exp(-tau / 40.0), 4),
    "energy": round(gain ** 2 * tau / 10.0, 4),
    "case": settings.get("case", ""),
}
os.makedirs(out, exist_ok=True)
with open(os.path.join(out, "metrics.json"), "w") as f:
    json.dump(metrics, f, indent=1, sort_keys=True)
print("gain", gain, "tau", tau, "->", metrics, "after", steps, "steps", len(state) >> 20, "MiB")
