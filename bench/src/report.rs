//! Summaries, the Markdown table and the PNG plots.

use std::path::Path;

use serde_json::{Value, json};

fn f(v: &Value, k: &str) -> f64 {
    v.get(k).and_then(Value::as_f64).unwrap_or(f64::NAN)
}

/// Median of the repeats (by events/s).
pub fn throughput_row(client: &str, server: &str, runs: Vec<Value>) -> Value {
    let mut rates: Vec<(f64, usize)> =
        runs.iter().enumerate().map(|(i, r)| (f(r, "events") / f(r, "wall_s"), i)).collect();
    rates.sort_by(|a, b| a.0.total_cmp(&b.0));
    let (rate, i) = rates[rates.len() / 2];
    let r = &runs[i];
    let events = f(r, "events");
    json!({
        "client": client,
        "server": server,
        "events": events,
        "events_per_s": rate,
        "cpu_us_per_event": f(r, "cpu_s") / events * 1e6,
        "server_cpu_us_per_event": f(r, "server_cpu_s") / events * 1e6,
        "wall_s": f(r, "wall_s"),
        "runs": runs.iter().map(|r| json!({
            "events_per_s": f(r, "events") / f(r, "wall_s"),
            "cpu_s": f(r, "cpu_s"),
            "wall_s": f(r, "wall_s"),
            "server_cpu_s": f(r, "server_cpu_s"),
        })).collect::<Vec<_>>(),
    })
}

/// The rows of one `bench/browser/run.mjs` result (one per client, in the order they first ran):
/// the median run by events/s, and every run.
pub fn browser_rows(server: &str, v: &Value) -> Vec<Value> {
    let runs: Vec<&Value> = v["runs"].as_array().map(|a| a.iter().collect()).unwrap_or_default();
    let mut clients: Vec<&str> = Vec::new();
    for r in &runs {
        let c = r["client"].as_str().unwrap_or("");
        if !clients.contains(&c) {
            clients.push(c);
        }
    }
    clients
        .into_iter()
        .map(|client| {
            let mut mine: Vec<&Value> = runs.iter().copied().filter(|r| r["client"] == client).collect();
            mine.sort_by(|a, b| f(a, "events_per_s").total_cmp(&f(b, "events_per_s")));
            let m = mine[mine.len() / 2];
            let events = f(m, "events");
            json!({
                "client": client,
                "server": server,
                "events": events,
                "events_per_s": f(m, "events_per_s"),
                "wall_s": f(m, "wall_s"),
                "cpu_us_per_event": f(m, "cpu_s") / events * 1e6,
                "renderer_cpu_us_per_event": f(m, "renderer_cpu_s") / events * 1e6,
                "runs": runs.iter().filter(|r| r["client"] == client).map(|r| json!({
                    "events_per_s": f(r, "events_per_s"),
                    "wall_s": f(r, "wall_s"),
                    "cpu_s": f(r, "cpu_s"),
                    "renderer_cpu_s": f(r, "renderer_cpu_s"),
                })).collect::<Vec<_>>(),
            })
        })
        .collect()
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let rank = ((p * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len());
    sorted[rank - 1]
}

pub fn rtt_row(client: &str, server: &str, v: &Value) -> Value {
    let mut lat: Vec<f64> =
        v["lat_us"].as_array().map(|a| a.iter().filter_map(Value::as_f64).collect()).unwrap_or_default();
    lat.sort_by(f64::total_cmp);
    let mean = lat.iter().sum::<f64>() / lat.len().max(1) as f64;
    json!({
        "client": client,
        "server": server,
        "acks": lat.len(),
        "p50_us": percentile(&lat, 0.50),
        "p90_us": percentile(&lat, 0.90),
        "p99_us": percentile(&lat, 0.99),
        "max_us": lat.last().copied().unwrap_or(f64::NAN),
        "mean_us": mean,
    })
}

pub fn memory_row(client: &str, v: &Value) -> Value {
    let n = f(v, "connections");
    let delta = f(v, "rss_after") - f(v, "rss_before");
    json!({
        "client": client,
        "connections": n,
        "rss_before_mib": f(v, "rss_before") / 1048576.0,
        "rss_after_mib": f(v, "rss_after") / 1048576.0,
        "kib_per_connection": delta / n / 1024.0,
    })
}

fn rows<'a>(r: &'a Value, k: &str) -> Vec<&'a Value> {
    r.get(k).and_then(Value::as_array).map(|a| a.iter().collect()).unwrap_or_default()
}

fn find<'a>(rows: &[&'a Value], client: &str, server: Option<&str>) -> Option<&'a Value> {
    rows.iter().copied().find(|r| r["client"] == client && server.is_none_or(|s| r["server"] == s))
}

fn ratio(a: f64, b: f64) -> String {
    if a.is_finite() && b.is_finite() && b != 0.0 { format!("{:.2}", a / b) } else { "–".into() }
}

pub fn markdown(r: &Value) -> String {
    let mut md = String::new();
    let m = &r["machine"];
    let s = &r["sizes"];
    md += &format!(
        "# Tidings benchmark results{}\n\nMachine: {} × {}, kernel {}, {} MiB RAM. All on 127.0.0.1; every client and server in its own process.\n\n",
        if r["smoke"] == true { " (SMOKE RUN: tiny N, numbers are not meaningful)" } else { "" },
        m["nproc"],
        m["cpu_model"].as_str().unwrap_or("?"),
        m["kernel"].as_str().unwrap_or("?"),
        m["mem_total_mib"],
    );
    md += &format!("Sizes: {}\n\n", serde_json::to_string(s).unwrap_or_default());

    let t = rows(r, "throughput");
    if !t.is_empty() {
        md += &format!(
            "## Receive throughput ({} `task.created` events, ~330 B JSON each, median of {} runs)\n\n",
            s["events"], s["repeats"]
        );
        md += "| server | client | events/s | client CPU µs/event | server CPU µs/event | Tidings ÷ this (events/s) | Tidings ÷ this (CPU/event) | floor ÷ this (events/s) |\n|---|---|---:|---:|---:|---:|---:|---:|\n";
        for row in &t {
            let server = row["server"].as_str().unwrap_or("");
            let tid = find(&t, "tidings", Some(server));
            let (tr, tc) = tid.map_or((f64::NAN, f64::NAN), |x| (f(x, "events_per_s"), f(x, "cpu_us_per_event")));
            let floor = find(&t, "floor", Some(server)).map_or(f64::NAN, |x| f(x, "events_per_s"));
            md += &format!(
                "| {} | {} | {:.0} | {:.2} | {:.2} | {} | {} | {} |\n",
                server,
                row["client"].as_str().unwrap_or(""),
                f(row, "events_per_s"),
                f(row, "cpu_us_per_event"),
                f(row, "server_cpu_us_per_event"),
                ratio(tr, f(row, "events_per_s")),
                ratio(tc, f(row, "cpu_us_per_event")),
                ratio(floor, f(row, "events_per_s")),
            );
        }
        md += "\n`cli` is `tidings listen … --count N > /dev/null` (the CLI as a user runs it: process start, connection and writing every event as a JSON line included; CPU of the CLI process).\n";
        md += "\n![throughput](throughput.png)\n\n";
    }

    let q = rows(r, "rtt");
    if !q.is_empty() {
        md +=
            &format!("## Round trip ({} sequential emit-with-ack, ~330 B out, `{{\"ok\":true}}` back)\n\n", s["acks"]);
        md += "| server | client | p50 µs | p90 µs | p99 µs | max µs | Tidings ÷ this (p50) | Tidings ÷ this (p99) |\n|---|---|---:|---:|---:|---:|---:|---:|\n";
        for row in &q {
            let server = row["server"].as_str().unwrap_or("");
            let tid = find(&q, "tidings", Some(server));
            let (t50, t99) = tid.map_or((f64::NAN, f64::NAN), |x| (f(x, "p50_us"), f(x, "p99_us")));
            md += &format!(
                "| {} | {} | {:.0} | {:.0} | {:.0} | {:.0} | {} | {} |\n",
                server,
                row["client"].as_str().unwrap_or(""),
                f(row, "p50_us"),
                f(row, "p90_us"),
                f(row, "p99_us"),
                f(row, "max_us"),
                ratio(t50, f(row, "p50_us")),
                ratio(t99, f(row, "p99_us")),
            );
        }
        md += "\n";
    }

    let mem = rows(r, "memory");
    if !mem.is_empty() {
        md += "## Memory per idle connection (client process RSS delta ÷ connections; server in another process)\n\n";
        md += "| client | connections | RSS before MiB | RSS after MiB | KiB/connection | Tidings ÷ this |\n|---|---:|---:|---:|---:|---:|\n";
        let tk = find(&mem, "tidings", None).map_or(f64::NAN, |x| f(x, "kib_per_connection"));
        for row in &mem {
            md += &format!(
                "| {} | {} | {:.1} | {:.1} | {:.1} | {} |\n",
                row["client"].as_str().unwrap_or(""),
                f(row, "connections"),
                f(row, "rss_before_mib"),
                f(row, "rss_after_mib"),
                f(row, "kib_per_connection"),
                ratio(tk, f(row, "kib_per_connection")),
            );
        }
        md += "\n";
    }

    let st = rows(r, "storm");
    if !st.is_empty() {
        md += "## Reconnect storm (Tidings clients; server SIGKILLed, restarted on the same port)\n\n";
        md += "| strategy | clients | server down ms | all back after restart ms | all back after kill ms | attempts/client | peak attempts/100 ms | peak after restart | peak connects/100 ms |\n|---|---:|---:|---:|---:|---:|---:|---:|---:|\n";
        for row in &st {
            md += &format!(
                "| {} | {} | {:.0} | {:.0} | {:.0} | {:.2} | {} | {} | {} |\n",
                row["strategy"].as_str().unwrap_or(""),
                row["clients"],
                f(row, "restart_at_ms"),
                f(row, "all_back_after_restart_ms"),
                f(row, "all_back_after_kill_ms"),
                f(row, "attempts_per_client"),
                row["peak_attempts_per_100ms"],
                row["peak_attempts_per_100ms_after_restart"],
                row["peak_connects_per_100ms"],
            );
        }
        md += "\n![reconnect spread](reconnect.png)\n\n";
    }

    let cs = rows(r, "cluster-storm");
    if !cs.is_empty() {
        md += "## Reconnect storm across nodes (Tidings clients, one node of three SIGKILLed)\n\n";
        md += "Redis, three reference-server nodes and HAProxy on this host; WebSocket clients with the feed, a steady publish stream through the balancer. Times from the kill.\n\n";
        md += "| strategy | clients | on killed node | disconnected | all reconnected ms | all caught up ms | reconnect p50/p90 ms | catch-up p50/max ms | attempts/client | peak connects/100 ms (clients / nodes) | events | violations |\n|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n";
        for row in &cs {
            md += &format!(
                "| {} | {} | {} | {} | {:.0} | {:.0} | {:.0} / {:.0} | {:.0} / {:.0} | {:.2} | {} / {:.0} | {} | {} |\n",
                row["strategy"].as_str().unwrap_or(""),
                row["clients"],
                row["clients_on_killed_node"],
                row["clients_disconnected"],
                f(row, "all_reconnected_after_kill_ms"),
                f(row, "all_caught_up_after_kill_ms"),
                f(row, "reconnect_ms_p50"),
                f(row, "reconnect_ms_p90"),
                f(row, "catch_up_duration_ms_p50"),
                f(row, "catch_up_duration_ms_max"),
                f(row, "attempts_per_client"),
                row["peak_connects_per_100ms"],
                f(row, "peak_node_connects_per_100ms"),
                row["events_acknowledged"],
                row["violations"]["clients"],
            );
        }
        md += "\n";
    }
    let b = rows(&r["browser"], "rows");
    if !b.is_empty() {
        md += &format!(
            "## Browser: events/s to a JS callback ({} `task.created` events, headless {}, median of {} runs)\n\n",
            s["browser_events"],
            r["browser"]["chromium"].as_str().unwrap_or("Chromium"),
            s["browser_repeats"],
        );
        md += "Same page, same server, runs alternated. CPU: every Chromium process (browser, renderer, network service); renderer: the page's process alone.\n\n";
        md += "| server | client | events/s | Chromium CPU µs/event | renderer CPU µs/event | runs (events/s) | Tidings ÷ this (events/s) |\n|---|---|---:|---:|---:|---|---:|\n";
        for row in &b {
            let server = row["server"].as_str().unwrap_or("");
            let tr = find(&b, "tidings", Some(server)).map_or(f64::NAN, |x| f(x, "events_per_s"));
            let runs: Vec<String> = row["runs"]
                .as_array()
                .map(|a| a.iter().map(|x| format!("{:.0}", f(x, "events_per_s"))).collect())
                .unwrap_or_default();
            md += &format!(
                "| {} | {} | {:.0} | {:.1} | {:.1} | {} | {} |\n",
                server,
                row["client"].as_str().unwrap_or(""),
                f(row, "events_per_s"),
                f(row, "cpu_us_per_event"),
                f(row, "renderer_cpu_us_per_event"),
                runs.join(", "),
                ratio(tr, f(row, "events_per_s")),
            );
        }
        md += "\n![browser](browser.png)\n\n";
        let bundles = &r["browser"]["bundles"];
        if bundles.is_object() {
            let t = &bundles["tidings"];
            let sio = &bundles["socket.io-client"];
            md += "### Browser bundle size (bytes; gzip -9)\n\n| bundle | raw | gzip -9 |\n|---|---:|---:|\n";
            for (name, v) in [
                ("tidings `.wasm`", &t["wasm"]),
                ("tidings driver, its JavaScript half", &t["glue"]),
                ("tidings `index.js`", &t["index"]),
                ("**tidings total**", t),
                ("socket.io-client (esbuild bundle, minified)", sio),
            ] {
                md += &format!("| {} | {} | {} |\n", name, v["raw"], v["gzip"]);
            }
            md += &format!(
                "| tidings ÷ socket.io-client | {} | {} |\n\n",
                ratio(f(t, "raw"), f(sio, "raw")),
                ratio(f(t, "gzip"), f(sio, "gzip"))
            );
        }
    }

    let fails = rows(r, "failures");
    if !fails.is_empty() {
        md += "## FAILURES\n\n";
        for x in fails {
            md += &format!("- {}\n", x.as_str().unwrap_or(""));
        }
    }
    md
}

/// Writes throughput.png and reconnect.png with plotters (bitmap backend, DejaVu Sans via ab_glyph).
pub fn plots(r: &Value, out: &Path) -> Result<(), String> {
    use plotters::prelude::*;
    register_font()?;
    let e = |x: &dyn std::fmt::Display| x.to_string();

    let t = rows(r, "throughput");
    if !t.is_empty() {
        let title = format!("Receive throughput, {} events (higher is better)", r["sizes"]["events"]);
        bars(&out.join("throughput.png"), &title, &t)?;
    }
    let b = rows(&r["browser"], "rows");
    if !b.is_empty() {
        let title = format!(
            "Browser (headless Chromium), {} events to a JS callback (higher is better)",
            r["sizes"]["browser_events"]
        );
        bars(&out.join("browser.png"), &title, &b)?;
    }

    let st = rows(r, "storm");
    if !st.is_empty() {
        let path = out.join("reconnect.png");
        let root = BitMapBackend::new(&path, (1000, 520)).into_drawing_area();
        root.fill(&WHITE).map_err(|x| e(&x))?;
        let series: Vec<(String, Vec<u64>, f64)> = st
            .iter()
            .map(|x| {
                let bins = x["attempts_per_100ms"]
                    .as_array()
                    .map(|a| a.iter().filter_map(Value::as_u64).collect())
                    .unwrap_or_default();
                (x["strategy"].as_str().unwrap_or("").to_string(), bins, f(x, "restart_at_ms") / 1000.0)
            })
            .collect();
        let xmax = series.iter().map(|s| s.1.len()).max().unwrap_or(1) as f64 / 10.0;
        let ymax = series.iter().flat_map(|s| s.1.iter().copied()).max().unwrap_or(1) as f64 * 1.1;
        let mut chart = ChartBuilder::on(&root)
            .caption(
                format!(
                    "Reconnect storm: {} clients, attempts per 100 ms after the server is killed",
                    st[0]["clients"]
                ),
                ("sans-serif", 22),
            )
            .margin(15)
            .x_label_area_size(45)
            .y_label_area_size(60)
            .build_cartesian_2d(0f64..xmax.max(0.1), 0f64..ymax.max(1.0))
            .map_err(|x| e(&x))?;
        chart
            .configure_mesh()
            .x_desc("seconds since the server was killed")
            .y_desc("connection attempts / 100 ms")
            .draw()
            .map_err(|x| e(&x))?;
        let colors = [RGBColor(214, 39, 40), RGBColor(31, 119, 180)];
        for (k, (name, bins, _)) in series.iter().enumerate() {
            let c = colors[k % 2];
            chart
                .draw_series(LineSeries::new(
                    bins.iter().enumerate().flat_map(|(i, v)| {
                        let x = i as f64 / 10.0;
                        [(x, *v as f64), (x + 0.1, *v as f64)]
                    }),
                    c.stroke_width(2),
                ))
                .map_err(|x| e(&x))?
                .label(name.clone())
                .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], c.stroke_width(2)));
        }
        if let Some((_, _, up)) = series.first() {
            chart
                .draw_series(LineSeries::new([(*up, 0.0), (*up, ymax)], BLACK.stroke_width(1)))
                .map_err(|x| e(&x))?
                .label("server restarted")
                .legend(|(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], BLACK));
        }
        chart
            .configure_series_labels()
            .background_style(WHITE.mix(0.8))
            .border_style(BLACK)
            .draw()
            .map_err(|x| e(&x))?;
        root.present().map_err(|x| e(&x))?;
    }
    Ok(())
}

/// A bar chart of `events_per_s`, one bar per row, labelled "client / server".
fn bars(path: &Path, title: &str, t: &[&Value]) -> Result<(), String> {
    use plotters::prelude::*;
    let e = |x: &dyn std::fmt::Display| x.to_string();
    let root = BitMapBackend::new(path, (1000, 520)).into_drawing_area();
    root.fill(&WHITE).map_err(|x| e(&x))?;
    let max = t.iter().map(|x| f(x, "events_per_s")).fold(0.0, f64::max) * 1.15;
    let n = t.len();
    let mut chart = ChartBuilder::on(&root)
        .caption(title, ("sans-serif", 22))
        .margin(15)
        .x_label_area_size(60)
        .y_label_area_size(80)
        .build_cartesian_2d(-0.5f64..(n as f64 - 0.5), 0f64..max.max(1.0))
        .map_err(|x| e(&x))?;
    let labels: Vec<String> = t
        .iter()
        .map(|x| format!("{} / {}", x["client"].as_str().unwrap_or(""), x["server"].as_str().unwrap_or("")))
        .collect();
    chart
        .configure_mesh()
        .disable_x_mesh()
        .x_labels(n)
        .x_label_formatter(&|x| {
            let i = x.round();
            if (x - i).abs() < 0.01 && i >= 0.0 {
                labels.get(i as usize).cloned().unwrap_or_default()
            } else {
                String::new()
            }
        })
        .y_desc("events/s")
        .y_label_formatter(&|y| format!("{:.0}k", y / 1000.0))
        .draw()
        .map_err(|x| e(&x))?;
    let color = |c: &str| match c {
        "floor" => RGBColor(120, 120, 120),
        "tidings" => RGBColor(31, 119, 180),
        "rust_socketio" => RGBColor(214, 39, 40),
        "cli" => RGBColor(148, 103, 189),
        _ => RGBColor(44, 160, 44),
    };
    chart
        .draw_series(t.iter().enumerate().map(|(i, x)| {
            let v = f(x, "events_per_s");
            Rectangle::new(
                [(i as f64 - 0.35, 0.0), (i as f64 + 0.35, v)],
                color(x["client"].as_str().unwrap_or("")).filled(),
            )
        }))
        .map_err(|x| e(&x))?;
    chart
        .draw_series(t.iter().enumerate().map(|(i, x)| {
            let v = f(x, "events_per_s");
            let label = if v >= 10_000.0 { format!("{:.0}k", v / 1000.0) } else { format!("{:.1}k", v / 1000.0) };
            Text::new(label, (i as f64 - 0.2, v + max * 0.05), ("sans-serif", 15))
        }))
        .map_err(|x| e(&x))?;
    root.present().map_err(|x| e(&x))
}

fn register_font() -> Result<(), String> {
    const CANDIDATES: [&str; 3] = [
        "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf",
        "/usr/share/fonts/dejavu/DejaVuSans.ttf",
        "/usr/share/fonts/TTF/DejaVuSans.ttf",
    ];
    let path = std::env::var("BENCH_FONT").ok().into_iter().chain(CANDIDATES.iter().map(|s| s.to_string()));
    for p in path {
        if let Ok(bytes) = std::fs::read(&p) {
            let bytes: &'static [u8] = Box::leak(bytes.into_boxed_slice());
            return plotters::style::register_font("sans-serif", plotters::style::FontStyle::Normal, bytes)
                .map_err(|_| format!("{p} is not a usable font"));
        }
    }
    Err("no TTF font found (install fonts-dejavu-core or set BENCH_FONT)".into())
}
