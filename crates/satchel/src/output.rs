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

/// A size for people: decimal units (`12.30 MB`), the same in every command.
pub fn bytes(n: u64) -> String {
    indicatif::DecimalBytes(n).to_string()
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
