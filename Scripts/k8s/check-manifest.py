#!/usr/bin/env python3
"""Checks Scripts/k8s/capfilt-job.yaml without a Kubernetes cluster.

    python3 Scripts/k8s/check-manifest.py [MANIFEST]      (needs PyYAML: apt-get install python3-yaml)
    python3 Scripts/k8s/check-manifest.py --commands [MANIFEST]
        prints, one line per index, the environment and command line each pod of the Indexed Job runs
        (JOB_COMPLETION_INDEX=i capfilt run ...), to run them on one machine as a test
    python3 Scripts/k8s/check-manifest.py --facts [MANIFEST]
        prints what a stand-in for the Job controller needs, as KEY=VALUE lines: completions, parallelism,
        backoff_limit_per_index, ignored_exit_codes (podFailurePolicy Ignore rules), termination_grace_seconds,
        and shared_mount=PATH for each PersistentVolumeClaim the capfilt container mounts (Scripts/k8s/test-indexed-job.sh)

1. Parses every YAML document and checks what capfilt needs of the Indexed Job: batch/v1 Job,
   completionMode Indexed, completions/parallelism/backoffLimitPerIndex/maxFailedIndexes consistent,
   restartPolicy Never (podFailurePolicy requires it), `capfilt run SPEC --workers N` with N = completions,
   `--threads T` with T = the CPU request, the spec path on a mounted ReadWriteMany PersistentVolumeClaim
   defined in the same file, podFailurePolicy rules that name the container.
2. If the `kubernetes` Python client is importable (pip install kubernetes), checks every field name and
   value type against its API models (V1Job, V1PersistentVolumeClaim, ...), so a misspelt or misplaced
   field is reported with its path. Otherwise says that this part was skipped.
`kubectl apply --dry-run=client` is not used: even with --validate=false it asks an API server for the
resource mapping, and there is none here.
Exit status 0 when nothing is wrong, 1 otherwise.
"""
import re
import sys
from pathlib import Path

try:
    import yaml
except ImportError:
    sys.exit("check-manifest: PyYAML is missing (apt-get install python3-yaml, or pip install pyyaml)")

errors: list[str] = []
notes: list[str] = []


def err(msg: str) -> None:
    errors.append(msg)


def get(d, path, default=None):
    for key in path.split("."):
        if not isinstance(d, dict) or key not in d:
            return default
        d = d[key]
    return d


def cpu_cores(q) -> float | None:
    s = str(q)
    if re.fullmatch(r"\d+(\.\d+)?", s):
        return float(s)
    if re.fullmatch(r"\d+m", s):
        return int(s[:-1]) / 1000
    return None


def option(args: list[str], name: str) -> str | None:
    for i, a in enumerate(args):
        if a == name and i + 1 < len(args):
            return args[i + 1]
        if a.startswith(name + "="):
            return a.split("=", 1)[1]
    return None


def check_job(job: dict, pvcs: dict[str, dict]) -> None:
    name = get(job, "metadata.name", "?")
    where = f"Job {name}"
    if job.get("apiVersion") != "batch/v1":
        err(f"{where}: apiVersion must be batch/v1, is {job.get('apiVersion')}")
    spec = job.get("spec") or {}
    if spec.get("completionMode") != "Indexed":
        err(f"{where}: spec.completionMode must be Indexed (JOB_COMPLETION_INDEX is the worker index)")
    completions, parallelism = spec.get("completions"), spec.get("parallelism", 1)
    if not isinstance(completions, int) or isinstance(completions, bool) or completions < 1:
        err(f"{where}: spec.completions must be a positive integer (the worker count)")
        completions = None
    if not isinstance(parallelism, int) or parallelism < 1 or (completions and parallelism > completions):
        err(f"{where}: spec.parallelism must be 1..completions, is {parallelism}")
    bpi = spec.get("backoffLimitPerIndex")
    if not isinstance(bpi, int) or bpi < 0:
        err(f"{where}: spec.backoffLimitPerIndex must be a non-negative integer")
    mfi = spec.get("maxFailedIndexes")
    if mfi is not None:
        if bpi is None:
            err(f"{where}: maxFailedIndexes needs backoffLimitPerIndex")
        if not isinstance(mfi, int) or mfi < 0 or (completions and mfi > completions):
            err(f"{where}: maxFailedIndexes must be 0..completions, is {mfi}")
    if "backoffLimit" in spec and bpi is not None:
        notes.append(f"{where}: backoffLimit is set as well as backoffLimitPerIndex (usually left out)")

    pod = get(spec, "template.spec") or {}
    restart = pod.get("restartPolicy")
    if restart not in ("Never", "OnFailure"):
        err(f"{where}: template.spec.restartPolicy must be Never or OnFailure for a Job, is {restart}")
    containers = pod.get("containers") or []
    if not containers:
        err(f"{where}: no containers")
        return
    names = {c.get("name") for c in containers}
    pfp = spec.get("podFailurePolicy")
    if pfp is not None:
        if restart != "Never":
            err(f"{where}: podFailurePolicy requires restartPolicy Never")
        for i, rule in enumerate(pfp.get("rules") or []):
            if rule.get("action") not in ("Ignore", "FailIndex", "FailJob", "Count"):
                err(f"{where}: podFailurePolicy.rules[{i}].action {rule.get('action')} is not a valid action")
            codes = rule.get("onExitCodes")
            conds = rule.get("onPodConditions")
            if (codes is None) == (conds is None):
                err(f"{where}: podFailurePolicy.rules[{i}] needs exactly one of onExitCodes, onPodConditions")
            if codes is not None:
                if codes.get("containerName") not in (None, *names):
                    err(f"{where}: podFailurePolicy.rules[{i}] names container {codes.get('containerName')}, not in the pod")
                if codes.get("operator") not in ("In", "NotIn"):
                    err(f"{where}: podFailurePolicy.rules[{i}].onExitCodes.operator must be In or NotIn")
                vals = codes.get("values") or []
                if not vals or not all(isinstance(v, int) for v in vals):
                    err(f"{where}: podFailurePolicy.rules[{i}].onExitCodes.values must be a list of integers")
                if codes.get("operator") == "In" and 0 in vals:
                    err(f"{where}: podFailurePolicy.rules[{i}]: exit code 0 is not allowed with In")

    volumes = {v.get("name"): v for v in pod.get("volumes") or []}
    capfilt = [c for c in containers if "run" in (c.get("command") or []) + (c.get("args") or [])]
    if not capfilt:
        err(f"{where}: no container runs `capfilt run SPEC`")
        return
    for c in capfilt:
        cw = f"{where} container {c.get('name')}"
        argv = (c.get("command") or []) + (c.get("args") or [])
        argv = [str(a) for a in argv]
        if not all(isinstance(a, str) for a in (c.get("command") or []) + (c.get("args") or [])):
            err(f"{cw}: command/args entries must be strings (quote numbers: \"8\")")
        run_at = argv.index("run")
        spec_path = argv[run_at + 1] if run_at + 1 < len(argv) else None
        if not spec_path or spec_path.startswith("-"):
            err(f"{cw}: `run` is not followed by the spec path")
            spec_path = None
        workers = option(argv, "--workers")
        if workers is None:
            err(f"{cw}: no --workers N (the index comes from JOB_COMPLETION_INDEX, the count must be given)")
        elif completions is not None and workers != str(completions):
            err(f"{cw}: --workers {workers} differs from spec.completions {completions}")
        if option(argv, "--worker") is not None:
            notes.append(f"{cw}: --worker given explicitly; capfilt also reads JOB_COMPLETION_INDEX")
        threads = option(argv, "--threads")
        req = get(c, "resources.requests.cpu")
        lim = get(c, "resources.limits.cpu")
        if req is None:
            err(f"{cw}: no resources.requests.cpu (it sizes --threads and the placement)")
        elif threads is None:
            err(f"{cw}: no --threads T (T should equal the CPU request {req})")
        elif cpu_cores(req) != float(threads):
            err(f"{cw}: --threads {threads} differs from requests.cpu {req}")
        if req is not None and lim is not None and cpu_cores(lim) is not None and cpu_cores(req) is not None \
                and cpu_cores(lim) < cpu_cores(req):
            err(f"{cw}: limits.cpu {lim} is below requests.cpu {req}")
        shared = None
        for m in c.get("volumeMounts") or []:
            v = volumes.get(m.get("name"))
            if v is None:
                err(f"{cw}: volumeMount {m.get('name')} has no volume")
                continue
            claim = get(v, "persistentVolumeClaim.claimName")
            if claim is None:
                continue
            pvc = pvcs.get(claim)
            if pvc is None:
                notes.append(f"{cw}: claim {claim} is not defined in this file; it must be ReadWriteMany")
            elif "ReadWriteMany" not in (get(pvc, "spec.accessModes") or []):
                err(f"{cw}: PersistentVolumeClaim {claim} is not ReadWriteMany (workers on several nodes share it)")
            if get(v, "persistentVolumeClaim.readOnly"):
                err(f"{cw}: the shared volume {m.get('name')} is read-only")
            mp = m.get("mountPath", "")
            if spec_path and (spec_path == mp or spec_path.startswith(mp.rstrip("/") + "/")):
                shared = m.get("name")
        if spec_path and shared is None:
            err(f"{cw}: the spec {spec_path} is not on a mounted PersistentVolumeClaim")
        notes.append(f"{cw}: {' '.join(argv)}; {completions} workers, {parallelism} at once, "
                     f"cpu {req}, shared volume {shared}")


def schema_walk(obj, model: str, path: str, client) -> None:
    """Every key must be a field of the API model, every value of the field's type."""
    if model == "object":
        return
    m = re.fullmatch(r"[lL]ist\[(.+)\]", model)
    if m:
        if not isinstance(obj, list):
            err(f"{path}: expected a list, found {type(obj).__name__}")
            return
        for i, item in enumerate(obj):
            schema_walk(item, m.group(1), f"{path}[{i}]", client)
        return
    m = re.fullmatch(r"[dD]ict[(\[]str, (.+)[)\]]", model)
    if m:
        if not isinstance(obj, dict):
            err(f"{path}: expected a map, found {type(obj).__name__}")
            return
        for k, v in obj.items():
            inner = m.group(1)
            if inner == "str" and isinstance(v, (int, float)) and not isinstance(v, bool):
                continue  # quantities such as cpu: 2 are accepted as numbers
            schema_walk(v, inner, f"{path}.{k}", client)
        return
    simple = {"str": str, "int": int, "bool": bool, "float": (int, float), "datetime": str, "date": str}
    if model in simple:
        ok = isinstance(obj, simple[model]) and not (model in ("int", "float") and isinstance(obj, bool))
        if not ok:
            err(f"{path}: expected {model}, found {type(obj).__name__} {obj!r}")
        return
    cls = getattr(client, model, None)
    if cls is None:
        notes.append(f"{path}: no model {model} in the kubernetes client; not checked")
        return
    if not isinstance(obj, dict):
        err(f"{path}: expected an object ({model}), found {type(obj).__name__}")
        return
    by_json = {v: k for k, v in cls.attribute_map.items()}
    for k, v in obj.items():
        if k not in by_json:
            err(f"{path}.{k}: unknown field (not in {model})")
            continue
        schema_walk(v, cls.openapi_types[by_json[k]], f"{path}.{k}", client)


def commands(docs: list) -> int:
    import shlex
    for job in (d for d in docs if d.get("kind") == "Job"):
        for c in get(job, "spec.template.spec.containers") or []:
            argv = [str(a) for a in (c.get("command") or []) + (c.get("args") or [])]
            if "run" not in argv:
                continue
            for i in range(get(job, "spec.completions", 1)):
                env = [f"JOB_COMPLETION_INDEX={i}"] + [f"{e['name']}={e['value']}" for e in c.get("env") or []
                                                       if "value" in e]
                print(" ".join(shlex.quote(x) for x in env + argv))
    return 0


def facts(docs: list) -> int:
    for job in (d for d in docs if d.get("kind") == "Job"):
        spec = job.get("spec") or {}
        ignored = [v for r in get(spec, "podFailurePolicy.rules") or [] if r.get("action") == "Ignore"
                   for v in get(r, "onExitCodes.values") or [] if get(r, "onExitCodes.operator") == "In"]
        print(f"completions={spec.get('completions', 1)}")
        print(f"parallelism={spec.get('parallelism', 1)}")
        print(f"backoff_limit_per_index={spec.get('backoffLimitPerIndex', '')}")
        print(f"ignored_exit_codes={' '.join(str(v) for v in ignored)}")
        print(f"termination_grace_seconds={get(spec, 'template.spec.terminationGracePeriodSeconds', 30)}")
        volumes = {v.get("name"): v for v in get(spec, "template.spec.volumes") or []}
        for c in get(spec, "template.spec.containers") or []:
            if "run" in [str(a) for a in (c.get("command") or []) + (c.get("args") or [])]:
                for m in c.get("volumeMounts") or []:
                    if get(volumes.get(m.get("name")) or {}, "persistentVolumeClaim") is not None:
                        print(f"shared_mount={m.get('mountPath')}")
    return 0


def main() -> int:
    args = sys.argv[1:]
    mode = next((a for a in args if a in ("--commands", "--facts")), None)
    args = [a for a in args if a not in ("--commands", "--facts")]
    path = Path(args[0]) if args else Path(__file__).with_name("capfilt-job.yaml")
    docs = [d for d in yaml.safe_load_all(path.read_text()) if d is not None]
    if mode == "--commands":
        return commands(docs)
    if mode == "--facts":
        return facts(docs)
    pvcs = {get(d, "metadata.name"): d for d in docs if d.get("kind") == "PersistentVolumeClaim"}
    jobs = [d for d in docs if d.get("kind") == "Job"]
    if not jobs:
        err("no Job in the manifest")
    for job in jobs:
        check_job(job, pvcs)
    try:
        import kubernetes
        from kubernetes import client
    except ImportError:
        notes.append("field names and types NOT checked against the API: the kubernetes Python client is "
                     "not installed (pip install kubernetes)")
    else:
        for d in docs:
            version = d.get("apiVersion", "")
            group_version = version.split("/")[-1].capitalize()
            model = f"{group_version}{d.get('kind', '')}"
            if getattr(client, model, None) is None:
                err(f"{d.get('kind')} {version}: no such API model ({model})")
                continue
            schema_walk(d, model, f"{d.get('kind')}/{get(d, 'metadata.name', '?')}", client)
        notes.append(f"field names and types checked against the kubernetes Python client "
                     f"{kubernetes.__version__} models")
    for n in notes:
        print(f"check-manifest: {n}")
    for e in errors:
        print(f"check-manifest: ERROR {e}", file=sys.stderr)
    print(f"check-manifest: {path}: {len(docs)} document(s), "
          f"{'OK' if not errors else f'{len(errors)} error(s)'}")
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main())
