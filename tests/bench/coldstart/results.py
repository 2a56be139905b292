"""The cold-start benchmark's summary: medians per strategy, the Markdown table, the chart."""

import os
import statistics

import chart

LABELS = {
    "baseline": "server reads safetensors (no tensorinit)",
    "pagecache-exec": "tensorinit pagecache + exec",
    "host-signal": "tensorinit host arena + signal, early start",
    "host-signal-after": "tensorinit host arena + signal, after-load",
    "host-signal-ionice": "host arena + signal, early, readers at idle I/O priority",
    "packed-host-signal": "packed file, host arena + signal",
    "http-host-signal": "http (nginx, loopback), host arena + signal",
}



def fmt_s(x):
    return "-" if x is None else "%.2f" % x


def summarize(runs, keys):
    rows = []
    base = None
    for key in keys:
        ok = [r for r in runs if r["strategy"] == key and r["ok"]]
        failed = [r for r in runs if r["strategy"] == key and not r["ok"]]
        if not ok:
            rows.append({"strategy": key, "label": LABELS[key], "runs": 0, "failed": len(failed)})
            continue
        secs = [r["seconds"] for r in ok]

        def phase(name):
            vals = [r["phases"][name] for r in ok if name in r.get("phases", {})]
            return statistics.median(vals) if vals else None

        stages = [r["report"]["seconds"]["stage"] for r in ok
                  if r.get("report") and r["report"].get("seconds") and "stage" in r["report"]["seconds"]]
        mid = sorted(ok, key=lambda r: r["seconds"])[(len(ok) - 1) // 2]  # the median run (lower middle)
        row = {"strategy": key, "label": LABELS[key], "runs": len(ok), "failed": len(failed),
               "median_run": {"round": mid["round"], "seconds": mid["seconds"], "phases": mid["phases"]},
               "median": statistics.median(secs), "min": min(secs), "max": max(secs),
               "imports": phase("imports"), "weights": phase("weights"), "answer": phase("answer"),
               "stage": statistics.median(stages) if stages else None}
        if key == "baseline":
            base = row["median"]
        rows.append(row)
    for row in rows:
        if base and row.get("median"):
            row["vs_baseline"] = row["median"] / base
    return rows


def table_md(rows):
    out = ["| strategy | median s | min s | max s | vs baseline | torch imported | weights mapped | first answer | tensorinit stage s |",
           "|---|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for r in rows:
        if not r["runs"]:
            out.append("| %s | failed (%d runs) | | | | | | | |" % (r["label"], r["failed"]))
            continue
        ratio = "x%.2f" % r["vs_baseline"] if r.get("vs_baseline") else "-"
        if r.get("vs_baseline") and r["strategy"] != "baseline":
            ratio += " (%s)" % speed_note(r["vs_baseline"])
        out.append("| %s | **%s** | %s | %s | %s | %s | %s | %s | %s |" % (
            r["label"], fmt_s(r["median"]), fmt_s(r["min"]), fmt_s(r["max"]), ratio,
            fmt_s(r["imports"]), fmt_s(r["weights"]), fmt_s(r["answer"]), fmt_s(r["stage"])))
    return "\n".join(out)


CACHE_WORDS = {"all": "whole page cache dropped before every run (echo 3 > drop_caches)",
               "model": "weight files dropped from the page cache before every run (Python, torch, tensorinit cached)"}
LEGEND = [("start", "#cbd5e0", "until the server's first line"),
          ("imports", "#90cdf4", "Python + import torch"),
          ("weights", "#2b6cb0", "load_file / wait for tensorinit"),
          ("answer", "#38a169", "first answer (reads what is still on disk)")]


def speed_note(ratio):
    if ratio is None:
        return ""
    return "%.2fx faster" % (1 / ratio) if ratio < 1 else "%.2fx slower" % ratio


def chart_bar(row):
    """One bar: the median, min-max, and the median run's phases (scaled to the median when the
    round count is even and the median falls between two runs)."""
    run = row["median_run"]
    ph = run["phases"]
    scale = row["median"] / run["seconds"]
    marks = [0.0, ph.get("main", 0.0), ph.get("imports", 0.0), ph.get("weights", 0.0), run["seconds"]]
    segments = [(marks[i] * scale, marks[i + 1] * scale, key) for i, key in enumerate(("start", "imports", "weights", "answer"))]
    note = speed_note(row.get("vs_baseline")) if row["strategy"] != "baseline" else ""
    return {"label": row["label"], "median": row["median"], "min": row["min"], "max": row["max"],
            "note": note, "segments": segments}


def render(result, out):
    """Writes coldstart.svg and table.md into out from a coldstart.json object; returns the table text."""
    env, model, rows, runs = result["environment"], result["model"], result["summary"], result["runs"]
    drop = result.get("drop") or ("all" if env.get("cache_drop") == "drop_caches" else "model")
    lo = min(env["load_before"][0], env["load_after"][0])
    hi = max(env["load_before"][0], env["load_after"][0])
    title = "Container start to first answer: %s" % model["description"]
    subtitle = [CACHE_WORDS[drop] + "; %.2f GB of weights; %d cores, load average %.1f-%.1f" % (model["bytes"] / 1e9, env["cores"], lo, hi),
                "median of %d rounds, order rotated; whiskers: min-max; segments: the phases of the median run" % result["rounds"]]
    with open(os.path.join(out, "coldstart.svg"), "w") as f:
        f.write(chart.bar_chart(title, subtitle, [chart_bar(r) for r in rows if r["runs"]], LEGEND))
    header = ["Cold start, %s (%d bytes, %d tensors): seconds from spawning the entrypoint to the first "
              "HTTP 200 of GET / (a checksum of every weight byte); %d rounds, order rotated each round; medians."
              % (model["description"], model["bytes"], model["tensors"], result["rounds"]),
              "Page cache: %s." % CACHE_WORDS[drop],
              "%d cores, %.0f GiB; load average before %s, after %s; entrypoint %s; server: Python %s, torch %s, "
              "safetensors %s; %s." % (env["cores"], env["mem_gib"], " ".join("%.2f" % x for x in env["load_before"]),
                                       " ".join("%.2f" % x for x in env["load_after"]),
                                       "as PID 1 of a new PID namespace (unshare -fp)" if env["pid1"] else "as a plain child",
                                       env["python"], env["torch"], env["safetensors"], env["tensorinit"]),
              "Phase columns: medians of the seconds after spawn at which the server had imported torch, "
              "had every tensor object, and had computed its first answer."]
    notes = ["- not run: %s: %s" % (k, why) for k, why in result["skipped"].items()]
    notes += ["- failed: %s round %d: %s" % (r["strategy"], r["round"], r["error"]) for r in runs if not r["ok"]]
    text = "\n".join(header) + "\n\n" + table_md(rows) + "\n" + ("\n" + "\n".join(notes) + "\n" if notes else "")
    with open(os.path.join(out, "table.md"), "w") as f:
        f.write(text)
    return text
