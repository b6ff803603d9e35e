//! Measures segment size and per-message open latency on the SpamAssassin
//! corpus for a few block sizes and zstd levels, to choose the defaults.
//!
//! ```text
//! cargo run --release -p satchel-offline --example measure [CORPUS_DIR] [configs...]
//! ```
//! CORPUS_DIR defaults to /tmp/corpus/package/data (each `*/*.txt` is one raw
//! message preceded by an mbox "From " envelope line, which is dropped).
//! A config is `BLOCK_KIB:LEVEL`, e.g. `1024:12`.

use std::path::{Path, PathBuf};
use std::time::Instant;

use satchel_offline::{MessageEntry, MessageId, Segment, SegmentWriter};

fn load_corpus(dir: &Path) -> Vec<Vec<u8>> {
    let mut files: Vec<PathBuf> = Vec::new();
    if let Ok(groups) = std::fs::read_dir(dir) {
        for g in groups.flatten() {
            if let Ok(rd) = std::fs::read_dir(g.path()) {
                for f in rd.flatten() {
                    let p = f.path();
                    if p.extension().is_some_and(|e| e == "txt") {
                        files.push(p);
                    }
                }
            }
        }
    }
    files.sort();
    files
        .iter()
        .filter_map(|p| std::fs::read(p).ok())
        .map(|mut raw| {
            if raw.starts_with(b"From ") {
                let cut = raw
                    .iter()
                    .position(|&b| b == b'\n')
                    .map_or(raw.len(), |i| i + 1);
                raw.drain(..cut);
            }
            raw
        })
        .collect()
}

fn header(raw: &[u8], name: &str) -> String {
    let text = String::from_utf8_lossy(&raw[..raw.len().min(16 * 1024)]);
    for line in text.lines() {
        if line.is_empty() {
            break;
        }
        if let Some(value) = line
            .get(..name.len())
            .filter(|h| h.eq_ignore_ascii_case(name))
            .and_then(|_| line.get(name.len()..))
            .and_then(|rest| rest.strip_prefix(':'))
        {
            return value.trim().to_string();
        }
    }
    String::new()
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let i = ((sorted.len() - 1) as f64 * p).round() as usize;
    sorted[i]
}

fn main() {
    let mut args = std::env::args().skip(1);
    let dir = args
        .next()
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/tmp/corpus/package/data"));
    let mut configs: Vec<(usize, i32)> = args
        .filter_map(|a| {
            let (b, l) = a.split_once(':')?;
            Some((b.parse::<usize>().ok()? * 1024, l.parse().ok()?))
        })
        .collect();
    if configs.is_empty() {
        configs = vec![
            (256 << 10, 3),
            (1 << 20, 3),
            (1 << 20, 9),
            (1 << 20, 12),
            (1 << 20, 15),
            (512 << 10, 12),
            (2 << 20, 12),
        ];
    }
    let corpus = load_corpus(&dir);
    if corpus.is_empty() {
        eprintln!("no messages under {}", dir.display());
        std::process::exit(1);
    }
    let raw_total: usize = corpus.iter().map(Vec::len).sum();
    println!(
        "{} messages, {:.1} MB raw",
        corpus.len(),
        raw_total as f64 / 1e6
    );
    let entries: Vec<MessageEntry> = corpus
        .iter()
        .map(|raw| MessageEntry::new(raw.clone(), 0, header(raw, "From"), header(raw, "Subject")))
        .collect();
    let tmp = std::env::temp_dir().join(format!("satchel-measure-{}", std::process::id()));
    std::fs::create_dir_all(&tmp).expect("temp dir");
    println!(
        "{:>9} {:>5} {:>9} {:>6} {:>8} {:>9} {:>9} {:>9} {:>11}",
        "block",
        "level",
        "size MB",
        "ratio",
        "write s",
        "open p50",
        "open p99",
        "open max",
        "1st-pass p99"
    );
    for (block, level) in configs {
        let start = Instant::now();
        let mut w = SegmentWriter::new(level).with_block_size(block);
        for e in &entries {
            w.add(e.clone()).expect("add");
        }
        let info = w.finish_to_dir(&tmp).expect("finish");
        let write_s = start.elapsed().as_secs_f64();
        let seg = Segment::open(&tmp.join(&info.name)).expect("open");
        let ids: Vec<MessageId> = seg.entries().iter().map(|e| e.id).collect();
        // Three passes; per message keep the first and the fastest time. The
        // fastest filters out preemption on a shared machine, the first shows
        // what a user sees with the page cache warm.
        let mut first = vec![f64::MAX; ids.len()];
        let mut lat = vec![f64::MAX; ids.len()];
        for pass in 0..3 {
            for (i, id) in ids.iter().enumerate() {
                let t = Instant::now();
                let bytes = seg.read(id).expect("read");
                let ms = t.elapsed().as_secs_f64() * 1e3;
                lat[i] = lat[i].min(ms);
                if pass == 0 {
                    first[i] = ms;
                    assert_eq!(MessageId::of(&bytes), *id);
                }
            }
        }
        lat.sort_by(f64::total_cmp);
        first.sort_by(f64::total_cmp);
        println!(
            "{:>6}KiB {:>5} {:>9.3} {:>6.2} {:>8.2} {:>7.3}ms {:>7.3}ms {:>7.3}ms {:>9.3}ms",
            block >> 10,
            level,
            info.size as f64 / 1e6,
            raw_total as f64 / info.size as f64,
            write_s,
            percentile(&lat, 0.5),
            percentile(&lat, 0.99),
            lat.last().copied().unwrap_or(0.0),
            percentile(&first, 0.99)
        );
        let _ = std::fs::remove_file(tmp.join(&info.name));
    }
    let _ = std::fs::remove_dir_all(&tmp);
}
