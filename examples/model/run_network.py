"""Stands in for a BMTK run_network.py: reads the point's clone through
COMPONENT_PATH and writes what it saw into OUTPUT_DIR."""
import json
import os
import sys

components = os.environ["COMPONENT_PATH"]
out = os.environ["OUTPUT_DIR"]
with open(sys.argv[-1]) as f:
    case = json.load(f)["case"]
seen = {}
for name in ("SST2PV", "Pulse2IT"):
    with open(os.path.join(components, "synaptic_models/synapses_final", name + ".json")) as f:
        seen[name] = json.load(f)
with open(os.path.join(out, "result.json"), "w") as f:
    json.dump({"case": case, "seen": seen, "component_path": components,
               "params": json.loads(os.environ.get("SWEEP_PARAMS", "{}"))}, f, indent=1)
print("simulated", case, "in", out)
if os.environ.get("FAIL_IF_INITW") and \
        float(os.environ["FAIL_IF_INITW"]) == seen["SST2PV"]["initW"]:
    sys.exit(5)
