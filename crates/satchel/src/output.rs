//! Printing results: human text by default, JSON with `--json`.

use serde::Serialize;

pub fn json<T: Serialize>(value: &T) -> anyhow::Result<()> {
    println!("{}", serde_json::to_string_pretty(value)?);
    Ok(())
}

pub fn date(ts: Option<i64>) -> String {
    ts.and_then(|t| chrono::DateTime::from_timestamp(t, 0))
        .map(|d| d.format("%Y-%m-%d %H:%M").to_string())
        .unwrap_or_else(|| "(no date)".into())
}

pub fn bytes(n: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KB", "MB", "GB", "TB"];
    let mut v = n as f64;
    let mut unit = 0;
    while v >= 1000.0 && unit < UNITS.len() - 1 {
        v /= 1000.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{n} B")
    } else {
        format!("{v:.1} {}", UNITS[unit])
    }
}

/// Search hits as `satchel search` and `satchel laptop search` both print them.
pub fn hits(out: &mut impl std::io::Write, hits: &[satchel_api::SearchHit]) -> std::io::Result<()> {
    for h in hits {
        writeln!(out, "{}  {}  {}", h.id, date(h.date), h.mailboxes.join(","))?;
        writeln!(out, "    From: {}", h.from)?;
        writeln!(out, "    Subject: {}", h.subject)?;
        if !h.snippet.is_empty() {
            writeln!(out, "    {}", h.snippet)?;
        }
    }
    Ok(())
}
