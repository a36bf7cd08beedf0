"""Alternating campaign_rates passes over settings (extra libFuzzer flags / env)."""
import json, os, statistics, sys, tempfile, time
from pathlib import Path
from pyfuzz import bench, campaign

orig = campaign._harness_args
from pyfuzz import build as _b
ORIG_CORE = _b.instrumented_core
SETTINGS = {
    "default": ([], {}),
    "entropic0": (["-entropic=0"], {}),
} if not os.environ.get("NODEFAULTS") else {"default": ([], {})}
for arg in sys.argv[3:]:
    name, _, flags = arg.partition("=")
    extra, env = [], {}
    for f in flags.split(";"):
        if f.startswith("-"):
            extra.append(f)
        elif f:
            k, _, v = f.partition(":")
            env[k] = v
    SETTINGS[name] = (extra, env)
inputs, passes = int(sys.argv[1]), int(sys.argv[2])
out = open(os.environ.get("OUT", "/tmp/c8/rates.jsonl"), "a")
tmp = Path(tempfile.mkdtemp(prefix="c8rates"))
for p in range(passes):
    for name, (extra, env) in SETTINGS.items():
        def args(*a, extra=extra, **k):
            r = orig(*a, **k)
            return r + extra  # libFuzzer: a later flag overrides an earlier one
        campaign._harness_args = args
        env = dict(env)
        core = env.pop("CORE", None)
        from pyfuzz import build
        build.instrumented_core = (lambda core=core: Path(core)) if core else ORIG_CORE
        saved = {k: os.environ.get(k) for k in env}
        os.environ.update(env)
        rec = {"pass": p, "setting": name, "inputs": inputs, "load": os.getloadavg()[0], "time": time.strftime("%H:%M:%S")}
        for oracle in ("on", "off"):
            s, sr = bench._campaign_cpu_seconds(100, oracle, tmp / "short")
            l, lr = bench._campaign_cpu_seconds(100 + inputs, oracle, tmp / "long")
            rec[oracle] = round((lr - sr) / max(l - s, 1e-9))
            rec[oracle + "_runs_per_input"] = round((lr - sr) / inputs, 1)
        for k, v in saved.items():
            if v is None: os.environ.pop(k, None)
            else: os.environ[k] = v
        print(json.dumps(rec), flush=True); out.write(json.dumps(rec) + "\n"); out.flush()
