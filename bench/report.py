"""Render bench/results.json as docs/benchmarks.md."""

from __future__ import annotations

import textwrap


def _latency_row(name: str, stats: dict) -> str:
    return f"| {name} | {stats['p50_ms']} | {stats['p99_ms']} | {stats['mean_ms']} | {stats['n']} |"


def _num(value, suffix: str = "") -> str:
    return "-" if value is None else f"{value}{suffix}"


def _met(ok: bool | None) -> str:
    return "-" if ok is None else "yes" if ok else "NO"


def _idle(idle: dict) -> list[str]:
    """The idle-at-scale section: ours against the bare Kopf operator, size by size."""
    slow, default = idle["poll_slow_s"], idle["default_poll_slow_s"]
    sizes = idle["sizes"]
    done = {n: r for n, r in sizes.items() if "ours_rechecks" in r}
    lines = [
        f"## Idle at scale: N stable objects against a bare Kopf operator (measured {idle['measured_at']}, "
        f"{idle['machine']['cpus']} CPUs)",
        "",
        "`bench/idle.py` (`python -m bench idle [--sizes N ...]`), each size on a fresh stack: LocalCloud,",
        "the Kubernetes emulator and a counting proxy in front of OBS, in the benchmark's process; each",
        "operator in a subprocess watching a namespace of its own that holds the same N objects:",
        "ModelArtsAlgorithms whose `code.obsPath` is one folder uploaded once (a stable one costs one",
        "algorithm GET) and two MnistDatasets with one Local source (one OBS LIST each). The baseline,",
        "`bench/bare_operator.py`, is Kopf watching the same four kinds with a create handler that marks each",
        "object Ready (one status patch) and a daemon per object that only sleeps. Both idle through the",
        "same windows, measured side by side.",
        "",
        f"- Requests: ours restarted with `--poll-slow {slow:g}` and counted over two intervals. Requests per",
        f"  object per interval are what the default `--poll-slow {default:g}` makes per 5 minutes. After a",
        "  restart the rechecks come in one burst per interval, and the credentials Secret (cached 5 s) is",
        "  read a few times per burst; with rechecks spread evenly over the interval (objects created at",
        f"  different times) it is read up to {default / idle['secret_cache_s']:g} times per 5 minutes per "
        "namespace: the bound column.",
        f"- CPU: CPU-seconds per minute of each process over the idle windows ({idle['idle_window_s']:g} s",
        f"  from 10 s after the last Ready, then {2 * slow:g} s of rechecks). Ours is measured at the defaults",
        f"  with no recheck due (its floor) and with rechecks every {slow:g} s; at {default:g} s they come",
        f"  {default / slow:g} times less often: projected = floor + (at {slow:g} s - floor) x {slow:g}/{default:g}.",
        "  Bare: both windows together. An idle Kopf process spends a few CPU-milliseconds per minute",
        "  (watch bookmarks), so the ratios swing from run to run on a shared machine; the CPU per recheck",
        "  (ours above its floor, over the algorithm GETs and dataset LISTs) is the steadier figure.",
        "- RSS: VmRSS at the end of the windows (the larger); peak: VmHWM (the datasets' first sync hashes",
        "  120 MB of MNIST).",
        "- apply -> all Ready: from the first create (this benchmark's client, one POST per object) to the",
        "  last object's Ready=True, stamped by a watcher inside the emulator's store.",
        "",
    ]
    if done:
        lines += [
            "Requests per object per stable interval (= per 5 minutes at the defaults), goal <= 1:",
            "",
            "| objects | cloud | Kubernetes | total | met | bound, rechecks spread evenly | bare |",
            "|---|---|---|---|---|---|---|",
        ]
        for n, r in done.items():
            q = r["ours_rechecks"]["requests"]
            lines.append(f"| {n} | {q['cloud_per_object']} | {q['kube_per_object']} | {q['total_per_object']} | "
                         f"{_met(q['total_per_object'] <= 1)} | {r['total_per_object_bound']} | "
                         f"{r['bare_beside_rechecks']['requests']['total_per_object']} |")
        lines += ["", "What they were (counts over the two intervals):", ""]
        for n, r in done.items():
            by = ", ".join(f"{k} {v}" for k, v in r["ours_rechecks"]["requests"]["by_request"].items())
            lines.append(f"- {n} objects: {by}")
        lines += [
            "",
            f"CPU-seconds per minute (goal: ours <= 2x bare at {default:g} s):",
            "",
            f"| objects | bare | ours, floor | ours, rechecks every {slow:g} s | ours at {default:g} s (projected) "
            f"| ours/bare at {default:g} s | met | ours/bare, floor window | ours/bare, rechecks window "
            "| ours, CPU ms per recheck |",
            "|---|---|---|---|---|---|---|---|---|---|",
        ]
        for n, r in done.items():
            ratio = r["cpu_ratio_at_default"]
            lines.append(f"| {n} | {r['bare_cpu_s_per_min']} | {r['ours_floor']['cpu_s_per_min']} | "
                         f"{r['ours_rechecks']['cpu_s_per_min']} | {r['cpu_s_per_min_at_default']} | "
                         f"{_num(ratio, 'x')} | {_met(None if ratio is None else ratio <= 2)} | "
                         f"{_num(r['cpu_ratio_floor_window'], 'x')} | {_num(r['cpu_ratio_rechecks_window'], 'x')} | "
                         f"{_num(r.get('cpu_ms_per_recheck'))} |")
        lines += [
            "",
            "Memory (goal: RSS <= 200 MB at 500 objects):",
            "",
            "| objects | RSS bare (MB) | RSS ours (MB) | ours/bare | met | peak ours (MB) |",
            "|---|---|---|---|---|---|",
        ]
        for n, r in done.items():
            goal = r["rss_mb"] <= 200 if int(n) >= 500 else None
            lines.append(f"| {n} | {r['bare_rss_mb']} | {r['rss_mb']} | {_num(r['rss_ratio'], 'x')} | {_met(goal)} | "
                         f"{r['peak_rss_mb']} |")
    lines += [
        "",
        "apply -> all Ready in seconds (ours also without the two datasets, whose first sync uploads 66 MB",
        "each), and the CPU-seconds each operator spent on it:",
        "",
        "| objects | bare | ours | ours, algorithms only | ours/bare | CPU-s bare | CPU-s ours |",
        "|---|---|---|---|---|---|---|",
    ]
    for n, r in sizes.items():
        if "skipped" in r or "failed" in r:
            lines.append(f"| {n} | {'skipped: ' + r['skipped'] if 'skipped' in r else 'failed'} | | | | | |")
            continue
        b, o = r["bare_apply"], r["ours_apply"]
        lines.append(f"| {n} | {_num(b['apply_to_all_ready_s'])} | {_num(o['apply_to_all_ready_s'])} | "
                     f"{_num(o['apply_to_algorithms_ready_s'])} | {_num(r.get('apply_ratio'), 'x')} | "
                     f"{b['cpu_s']} | {o['cpu_s']} |")
    notes = [f"- {n} objects: {r['ours_note']} ({r['ours_apply']['ready']} of {n} Ready after "
             f"{r['ours_apply'].get('timed_out_after_s')} s)" for n, r in sizes.items() if r.get("ours_note")]
    notes += [f"- {n} objects failed: {r['failed'].splitlines()[0]}" for n, r in sizes.items() if "failed" in r]
    if notes:
        lines += ["", *notes]
    probed = {n: r["probes"] for n, r in sizes.items() if "probes" in r}
    if probed:
        lines += [
            "",
            f"Latency of ours at the defaults, next to the N idle objects, {idle['probes']} probe objects one at a",
            "time: created -> its first cloud call (the LIST of its own code folder, seen at the OBS proxy), and",
            "a spec change (deletionPolicy) -> status Synced at the new generation (and, on the way, the",
            "reconcile's first cloud call); all stamped in-process (goal: as fast as before, p50 11 ms and 13 ms):",
            "",
            "| objects | apply -> first cloud call p50 (ms) | p99 | spec change -> Synced p50 (ms) | p99 "
            "| spec change -> first cloud call p50 (ms) |",
            "|---|---|---|---|---|---|",
        ]
        for n, p in probed.items():
            a, c = p["apply_to_first_cloud_call"], p["spec_change_to_synced"]
            w = p.get("spec_change_to_first_cloud_call") or {}
            lines.append(f"| {n} | {a['p50_ms']} | {a['p99_ms']} | {c['p50_ms']} | {c['p99_ms']} | "
                         f"{_num(w.get('p50_ms'))} |")
    ran = ", ".join(str(n) for n in idle.get("last_run_sizes", sizes))
    lines += ["", f"The last run of the idle benchmark ({ran} objects) took {idle['wall_s']} s.", ""]
    return lines


def _distributed(distributed: dict) -> list[str]:
    """1 vs 2 workers of the boot file, measured one after the other in the same run."""
    lines = [
        f"## Distributed training: 1 vs 2 workers (measured {distributed['measured_at']}, "
        f"{distributed['machine']['cpus']} CPUs)",
        "",
        *textwrap.wrap(
            "`python -m bench distributed` (`bench/distributed.py`): `model_code/train_mnist_tf.py` on "
            f"the full training set ({distributed['train_images']} images, {distributed['epochs']} epochs, "
            "default hyperparameters), first as one worker, then as two worker processes with ModelArts' "
            "variables (`VC_WORKER_NUM`, `VC_TASK_INDEX`, `VC_WORKER_HOSTS` on loopback): "
            "`MultiWorkerMirroredStrategy` over gRPC, each worker on its half of the images with half the "
            "batch (the same global batch and steps). Wall time runs from the first process start to the "
            "last exit (TensorFlow import, joining the cluster, evaluation and export included); fit time is "
            "the sum of the chief's epoch times; accuracy is that of the one package written (the chief's). "
            "On 2 cores the two workers share the cores one worker had alone: this measures the cost of the "
            "exchange, not a speed-up.", width=100),
        "",
        "| workers | wall time (s) | fit time (s) | test accuracy | test F1 | images / batch per worker "
        "| packages |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in distributed["runs"]:
        shard = f"{r['images_per_worker']} / {r['batch_per_worker']}"
        lines.append(f"| {r['workers']} | {r['wall_s']} | {r['fit_s']} | {r['test_accuracy']} | "
                     f"{r['test_f1']} | {shard} | {r['packages']} |")
    lines += [
        "",
        f"2 workers / 1 worker: wall time {distributed['wall_ratio_two_to_one']}x, fit time "
        f"{distributed['fit_ratio_two_to_one']}x; test accuracy {distributed['accuracy_difference']:+}.",
        "",
    ]
    return lines


def render(results: dict) -> str:
    lines = [
        "# Benchmarks",
        "",
        "Generated by `make bench` (`python -m bench`) from `bench/results.json`; do not edit by hand.",
        "Ratios compare measurements taken side by side in the same run: the machines are shared and noisy.",
        "",
    ]
    model = results.get("model")
    if model:
        t, lat = model["training_full"], model["runtime_latency"]
        lines += [
            f"## Model: training and runtime latency (measured {model['measured_at']}, {model['machine']['cpus']} CPUs)",
            "",
            "Full MNIST training with `model_code/train_mnist_tf.py` (60k images, default hyperparameters):",
            "",
            "| epochs | wall time (s) | fit time (s) | test accuracy | goal | met |",
            "|---|---|---|---|---|---|",
            f"| {t['epochs']} | {t['wall_s']} | {t['fit_s']} | {t['test_accuracy']} | {t['goal']} | {'yes' if t['met'] else 'NO'} |",
            "",
            "Single-image latency: the runtime's whole pipeline (PNG decode, preprocessing, signature, top-5)",
            "against the bare SavedModel signature call, interleaved in one loop:",
            "",
            "| path | p50 (ms) | p99 (ms) | mean (ms) | n |",
            "|---|---|---|---|---|",
            _latency_row("runtime `inference()` (PNG upload)", lat["runtime_inference"]),
            _latency_row("raw signature call", lat["raw_signature"]),
            "",
            f"Runtime / raw at p50: {lat['overhead_ratio_p50']}x.",
            "",
        ]
    distributed = results.get("distributed")
    if distributed:
        lines += _distributed(distributed)
    cloud = results.get("cloud")
    if cloud:
        one, four, local, up = (cloud["predict_1_client"], cloud["predict_4_clients"], cloud["runtime_in_process"],
                                cloud["mnist_upload"])
        lines += [
            f"## Local cloud: prediction and upload (measured {cloud['measured_at']}, {cloud['machine']['cpus']} CPUs)",
            "",
            "Prediction round trips through `POST /v1/infers/{id}` (multipart PNG, X-Auth-Token; the local cloud",
            "proxies to the model's runtime process) next to the runtime's in-process `inference()`:",
            "",
            "| path | p50 (ms) | p99 (ms) | mean (ms) | n | requests/s |",
            "|---|---|---|---|---|---|",
            _latency_row("HTTP, 1 client", one) + f" {one['requests_per_s']} |",
            _latency_row("HTTP, 4 concurrent clients", four) + f" {four['requests_per_s']} |",
            _latency_row("runtime in-process", local) + " - |",
            "",
            f"HTTP / in-process at p50 (1 client): {cloud['ratio_http_to_in_process_p50']}x.",
            "",
            f"MNIST upload ({up['files']} files, raw and .gz, {up['bytes'] / 1e6:.1f} MB; median of {up['rounds']} "
            "alternating rounds into fresh prefixes):",
            "",
            "| method | seconds |",
            "|---|---|",
            f"| `ObsStore.upload_folder` (SHA-256 check, then put) | {up['upload_folder_s']} |",
            f"| plain `ObsClient.putFile` loop | {up['plain_putfile_loop_s']} |",
            f"| `ObsStore.upload_folder` again (unchanged: no bytes sent) | {up['upload_folder_rerun_s']} |",
            "",
            f"Ours / plain: {up['ratio_ours_to_plain']}x.",
            "",
        ]
    demo = results.get("demo")
    if demo:
        lines += [
            f"## make demo (measured {demo['measured_at']}, {demo['machine']['cpus']} CPUs)",
            "",
            "| whole demo, start to stop (s) | kubectl apply to service Ready (s) | prediction of test image #0 correct |",
            "|---|---|---|",
            f"| {demo['wall_s']} | {demo['apply_to_service_ready_s']} | {'yes' if demo['predicted_correctly'] else 'NO'} |",
            "",
        ]
    idle = results.get("idle")
    if idle:
        lines += _idle(idle)
    return "\n".join(lines)
