//! Reading mail to import: mbox files, Maildir folders and .eml files.
//!
//! [`Sources`] streams one message at a time whatever the input's size, so memory
//! does not grow with an mbox file. Anything it cannot read becomes a
//! [`SourceError`] naming the file, never a silent skip.
//!
//! mbox is read as *mboxrd*: a message starts at a `From ` line that opens the file
//! or follows an empty line; `>From `, `>>From `… lines lose one `>`; the empty line
//! before the next `From ` belongs to the file, not to the message. [`write_mbox`]
//! writes the same convention, so writing and reading give back the same bytes.

use crate::archive::BatchItem;
use std::collections::VecDeque;
use std::fs::File;
use std::io::{BufRead, BufReader, Read, Write};
use std::path::{Path, PathBuf};

#[derive(Debug, thiserror::Error)]
#[error("{origin}: {reason}")]
pub struct SourceError {
    pub origin: String,
    pub reason: String,
}

enum Unit {
    /// A file that is one message (.eml, or a Maildir entry).
    Message {
        path: PathBuf,
        folder: String,
    },
    Mbox(PathBuf),
    Error(SourceError),
}

pub struct Sources {
    units: VecDeque<Unit>,
    mbox: Option<MboxReader>,
}

impl Sources {
    /// Plans an import of `paths`. Folders must be Maildirs; files are mbox if they
    /// start with `From `, else single messages.
    pub fn open(paths: &[PathBuf]) -> Self {
        let mut units = VecDeque::new();
        for path in paths {
            plan(path, &mut units);
        }
        Sources { units, mbox: None }
    }

    /// How many units are planned: files and Maildir entries (an mbox counts one).
    pub fn planned(&self) -> usize {
        self.units.len()
    }
}

fn origin(path: &Path) -> String {
    path.display().to_string()
}

fn err(path: &Path, reason: impl Into<String>) -> Unit {
    Unit::Error(SourceError {
        origin: origin(path),
        reason: reason.into(),
    })
}

fn plan(path: &Path, units: &mut VecDeque<Unit>) {
    let meta = match std::fs::metadata(path) {
        Ok(m) => m,
        Err(e) => return units.push_back(err(path, e.to_string())),
    };
    if meta.is_dir() {
        if !is_maildir(path) {
            return units.push_back(err(path, "a folder must be a Maildir (with cur/ and new/)"));
        }
        plan_maildir(path, units);
        return;
    }
    let mut head = [0u8; 5];
    let n = File::open(path)
        .and_then(|mut f| f.read(&mut head))
        .unwrap_or(0);
    if &head[..n] == b"From " {
        units.push_back(Unit::Mbox(path.to_path_buf()));
    } else {
        units.push_back(Unit::Message {
            path: path.to_path_buf(),
            folder: String::new(),
        });
    }
}

fn is_maildir(path: &Path) -> bool {
    path.join("cur").is_dir() || path.join("new").is_dir()
}

/// The Maildir itself is INBOX; Maildir++ subfolders `.Name` are folder `Name`.
fn plan_maildir(root: &Path, units: &mut VecDeque<Unit>) {
    let mut folders = vec![(root.to_path_buf(), "INBOX".to_string())];
    if let Ok(entries) = std::fs::read_dir(root) {
        let mut subs: Vec<_> = entries
            .filter_map(|e| e.ok())
            .filter_map(|e| {
                let name = e.file_name().to_string_lossy().to_string();
                let sub = name.strip_prefix('.')?.to_string();
                (!sub.is_empty() && is_maildir(&e.path())).then(|| (e.path(), sub))
            })
            .collect();
        subs.sort();
        folders.extend(subs);
    }
    for (dir, folder) in folders {
        for part in ["new", "cur"] {
            let sub = dir.join(part);
            let Ok(entries) = std::fs::read_dir(&sub) else {
                continue;
            };
            let mut files: Vec<PathBuf> = entries
                .filter_map(|e| e.ok())
                .filter(|e| e.file_type().map(|t| t.is_file()).unwrap_or(false))
                .filter(|e| !e.file_name().to_string_lossy().starts_with('.'))
                .map(|e| e.path())
                .collect();
            files.sort();
            for path in files {
                units.push_back(Unit::Message {
                    path,
                    folder: folder.clone(),
                });
            }
        }
    }
}

impl Iterator for Sources {
    type Item = Result<BatchItem, SourceError>;

    fn next(&mut self) -> Option<Self::Item> {
        loop {
            if let Some(mbox) = &mut self.mbox {
                match mbox.next() {
                    Some(item) => return Some(item),
                    None => self.mbox = None,
                }
            }
            match self.units.pop_front()? {
                Unit::Error(e) => return Some(Err(e)),
                Unit::Message { path, folder } => {
                    return Some(
                        std::fs::read(&path)
                            .map(|raw| BatchItem {
                                origin: origin(&path),
                                folder,
                                raw,
                            })
                            .map_err(|e| SourceError {
                                origin: origin(&path),
                                reason: e.to_string(),
                            }),
                    );
                }
                Unit::Mbox(path) => match File::open(&path) {
                    Ok(f) => self.mbox = Some(MboxReader::new(path, f)),
                    Err(e) => {
                        return Some(Err(SourceError {
                            origin: origin(&path),
                            reason: e.to_string(),
                        }));
                    }
                },
            }
        }
    }
}

/// Streams the messages of one mbox file.
pub struct MboxReader {
    path: PathBuf,
    reader: BufReader<File>,
    /// The `From ` line that opens the next message, once seen.
    pending_from: bool,
    number: usize,
    done: bool,
}

impl MboxReader {
    fn new(path: PathBuf, file: File) -> Self {
        MboxReader {
            path,
            reader: BufReader::with_capacity(256 * 1024, file),
            pending_from: false,
            number: 0,
            done: false,
        }
    }

    fn read_message(&mut self) -> std::io::Result<Option<Vec<u8>>> {
        let mut line = Vec::new();
        if !self.pending_from {
            // Start of file: the envelope line.
            if self.reader.read_until(b'\n', &mut line)? == 0 {
                return Ok(None);
            }
            if !line.starts_with(b"From ") {
                return Err(std::io::Error::other("not an mbox file: no From line"));
            }
        }
        self.pending_from = false;
        let mut msg = Vec::new();
        let mut prev_blank = false;
        loop {
            line.clear();
            if self.reader.read_until(b'\n', &mut line)? == 0 {
                break;
            }
            if prev_blank && line.starts_with(b"From ") {
                self.pending_from = true;
                break;
            }
            prev_blank = line == b"\n" || line == b"\r\n";
            let quoted = line.iter().take_while(|&&b| b == b'>').count();
            if quoted > 0 && line[quoted..].starts_with(b"From ") {
                msg.extend_from_slice(&line[1..]);
            } else {
                msg.extend_from_slice(&line);
            }
        }
        // The separator's empty line is the file's, not the message's.
        if msg.ends_with(b"\r\n") && prev_blank {
            msg.truncate(msg.len() - 2);
        } else if msg.ends_with(b"\n") && prev_blank {
            msg.truncate(msg.len() - 1);
        }
        Ok(Some(msg))
    }
}

impl Iterator for MboxReader {
    type Item = Result<BatchItem, SourceError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.done {
            return None;
        }
        self.number += 1;
        let origin = format!("{}#{}", self.path.display(), self.number);
        match self.read_message() {
            Ok(Some(raw)) => Some(Ok(BatchItem {
                origin,
                folder: String::new(),
                raw,
            })),
            Ok(None) => {
                self.done = true;
                None
            }
            Err(e) => {
                self.done = true;
                Some(Err(SourceError {
                    origin,
                    reason: e.to_string(),
                }))
            }
        }
    }
}

/// Appends one message to an mbox in the mboxrd convention [`MboxReader`] reads.
pub fn write_mbox(out: &mut impl Write, envelope: &[u8], raw: &[u8]) -> std::io::Result<()> {
    out.write_all(envelope)?;
    if !envelope.ends_with(b"\n") {
        out.write_all(b"\n")?;
    }
    for line in raw.split_inclusive(|&b| b == b'\n') {
        let quoted = line.iter().take_while(|&&b| b == b'>').count();
        if line[quoted..].starts_with(b"From ") {
            out.write_all(b">")?;
        }
        out.write_all(line)?;
    }
    if !raw.ends_with(b"\n") {
        out.write_all(b"\n")?;
    }
    out.write_all(b"\n")
}
