//! The audit log of the tier gate: a CSV file, one line per denial or override, fsynced after each line.
//!
//! ```text
//! time,unix,event,budget,job,tier,actor,reason,check
//! 2026-11-26T14:03:00Z,1795701780,denied,research-cluster,bt-7,heavy,,outside heavy windows 22:00-06:00,1c9a3e07
//! 2026-11-26T14:05:10Z,1795701910,override,research-cluster,bt-7,heavy,alice,"quarter close, approved by bob",9b0f6a21
//! ```
//!
//! The last column, `check`, is the FNV-1a hash (32 bits, hex) of the line before it: a line torn by a crash
//! and completed by a later newline cannot pass for a whole one.
//!
//! Fields are quoted when they hold a comma or a quote (quotes doubled); line breaks inside fields are
//! replaced by spaces so that each entry is exactly one line. A crash can leave a torn last line: readers skip
//! it (and report it), and the next append starts on a fresh line.

use std::fmt;
use std::fs::{File, OpenOptions};
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::sync::Mutex;

use super::civil::rfc3339;

/// The header line.
pub const AUDIT_HEADER: &str = "time,unix,event,budget,job,tier,actor,reason,check";

fn fnv1a(s: &str) -> u32 {
    s.bytes().fold(0x811c_9dc5, |h, b| (h ^ u32::from(b)).wrapping_mul(0x0100_0193))
}

/// What an audit line records.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum AuditEvent {
    /// A job was refused.
    Denied,
    /// A job was let through by an authorised override.
    Override,
}

impl AuditEvent {
    fn as_str(self) -> &'static str {
        match self {
            AuditEvent::Denied => "denied",
            AuditEvent::Override => "override",
        }
    }
}

impl FromStr for AuditEvent {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "denied" => Ok(AuditEvent::Denied),
            "override" => Ok(AuditEvent::Override),
            other => Err(format!("`{other}` is not an audit event")),
        }
    }
}

/// One line of the audit log.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct AuditEntry {
    /// When, in Unix seconds (written also as RFC 3339 in the `time` column).
    pub unix: i64,
    /// What happened.
    pub event: AuditEvent,
    /// The budget whose gate decided (comma-separated when several).
    pub budget: String,
    /// The job.
    pub job: String,
    /// The job's tier.
    pub tier: String,
    /// Who overrode (empty for denials).
    pub actor: String,
    /// Why.
    pub reason: String,
}

brownout_foundation::setters! {
    impl AuditEntry {
        budget: String,
        job: String,
        tier: String,
        actor: String,
        reason: String,
    }
}

fn field(s: &str) -> String {
    let s: String = s.chars().map(|c| if c == '\n' || c == '\r' { ' ' } else { c }).collect();
    if s.contains([',', '"']) || s.starts_with(' ') || s.ends_with(' ') {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s
    }
}

impl AuditEntry {
    /// An `event` at `unix` (seconds), with every text field empty: set them with the setters.
    pub fn new(event: AuditEvent, unix: i64) -> Self {
        Self {
            unix,
            event,
            budget: String::new(),
            job: String::new(),
            tier: String::new(),
            actor: String::new(),
            reason: String::new(),
        }
    }

    /// The entry as one CSV line, newline included.
    pub fn to_line(&self) -> String {
        let fields = [
            rfc3339(self.unix),
            self.unix.to_string(),
            self.event.as_str().to_owned(),
            field(&self.budget),
            field(&self.job),
            field(&self.tier),
            field(&self.actor),
            field(&self.reason),
        ];
        let body = fields.join(",");
        format!("{body},{:08x}\n", fnv1a(&body))
    }

    /// Parses one line (without its newline).
    pub fn parse_line(line: &str) -> Result<Self, String> {
        let (body, check) = line.rsplit_once(',').ok_or("no check column")?;
        if u32::from_str_radix(check, 16).ok() != Some(fnv1a(body)) || check.len() != 8 {
            return Err("check column does not match the line (torn or edited)".into());
        }
        let fields = split_csv(body)?;
        let [_, unix, event, budget, job, tier, actor, reason]: [String; 8] =
            fields.try_into().map_err(|f: Vec<String>| format!("{} fields, expected 8", f.len()))?;
        Ok(AuditEntry {
            unix: unix.parse().map_err(|_| format!("`{unix}` is not a Unix time"))?,
            event: event.parse()?,
            budget,
            job,
            tier,
            actor,
            reason,
        })
    }
}

fn split_csv(line: &str) -> Result<Vec<String>, String> {
    let mut fields = vec![String::new()];
    let mut chars = line.chars().peekable();
    let mut quoted = false;
    let mut at_start = true;
    while let Some(c) = chars.next() {
        let cur = fields.last_mut().expect("never empty");
        if quoted {
            if c == '"' {
                if chars.peek() == Some(&'"') {
                    chars.next();
                    cur.push('"');
                } else {
                    quoted = false;
                    if !matches!(chars.peek(), None | Some(',')) {
                        return Err("text after a closing quote".into());
                    }
                }
            } else {
                cur.push(c);
            }
        } else if c == ',' {
            fields.push(String::new());
            at_start = true;
            continue;
        } else if c == '"' && at_start {
            quoted = true;
        } else {
            cur.push(c);
        }
        at_start = false;
    }
    if quoted {
        return Err("unterminated quote".into());
    }
    Ok(fields)
}

/// An append-only audit file. Appends from the threads of one process are serialised; each is one `write`
/// of one whole line followed by `fsync`.
#[derive(Debug)]
pub struct AuditLog {
    path: PathBuf,
    lock: Mutex<()>,
}

impl AuditLog {
    /// An audit log at `path`, created with its header on the first append.
    pub fn new(path: impl Into<PathBuf>) -> Self {
        AuditLog { path: path.into(), lock: Mutex::new(()) }
    }

    /// The file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Appends one entry and fsyncs it, creating the file (and its directory) with the first entry. If the file
    /// ends in a torn line (a crash mid-write), the entry starts on a new line.
    pub fn append(&self, entry: &AuditEntry) -> io::Result<()> {
        let _guard = brownout_foundation::sync::lock(&self.lock);
        let open = || OpenOptions::new().read(true).append(true).create(true).open(&self.path);
        let mut f = match open() {
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                if let Some(dir) = self.path.parent().filter(|d| !d.as_os_str().is_empty()) {
                    std::fs::create_dir_all(dir)?;
                }
                open()?
            }
            other => other?,
        };
        let len = f.metadata()?.len();
        let mut out = String::new();
        if len == 0 {
            out.push_str(AUDIT_HEADER);
            out.push('\n');
        } else if !ends_with_newline(&mut f, len)? {
            out.push('\n');
        }
        out.push_str(&entry.to_line());
        f.write_all(out.as_bytes())?;
        f.sync_data()
    }
}

fn ends_with_newline(f: &mut File, len: u64) -> io::Result<bool> {
    f.seek(SeekFrom::Start(len - 1))?;
    let mut last = [0u8];
    f.read_exact(&mut last)?;
    Ok(last[0] == b'\n')
}

/// What [`read_audit`] found.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
#[non_exhaustive]
pub struct AuditRead {
    /// Every whole, well-formed entry.
    pub entries: Vec<AuditEntry>,
    /// Lines that were not (a torn line, a hand edit), with their 1-based numbers and reasons.
    pub bad_lines: Vec<(usize, String)>,
}

/// Reads an audit log's text. A last line without its newline is a torn write: skipped and reported.
pub fn read_audit(text: &str) -> AuditRead {
    let mut read = AuditRead::default();
    let complete = text.ends_with('\n');
    let lines: Vec<&str> = text.split('\n').collect();
    let last = lines.len() - 1; // after the final '\n' (empty) or the torn tail
    for (i, line) in lines.iter().enumerate() {
        let n = i + 1;
        if i == last {
            if !complete && !line.is_empty() {
                read.bad_lines.push((n, "torn last line (no newline)".into()));
            }
            break;
        }
        if line.is_empty() || (i == 0 && *line == AUDIT_HEADER) {
            continue;
        }
        match AuditEntry::parse_line(line) {
            Ok(e) => read.entries.push(e),
            Err(r) => read.bad_lines.push((n, r)),
        }
    }
    read
}

impl fmt::Display for AuditEntry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.to_line().trim_end())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_first_entry_creates_the_file_and_its_directory() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("reports/backtest/heavy_job_denials.csv");
        let log = AuditLog::new(&path);
        assert!(!dir.path().join("reports").exists(), "opening the log writes nothing");
        log.append(&AuditEntry::new(AuditEvent::Denied, 1).job("bt-1".into())).unwrap();
        let read = read_audit(&std::fs::read_to_string(&path).unwrap());
        assert_eq!((read.entries.len(), read.entries[0].job.as_str()), (1, "bt-1"));
    }

    #[test]
    fn quoting_round_trips() {
        let e = AuditEntry {
            unix: 1_795_701_910,
            event: AuditEvent::Override,
            budget: "research-cluster".into(),
            job: "bt,7".into(),
            tier: "heavy".into(),
            actor: "alice \"the boss\"".into(),
            reason: "quarter close,\napproved".into(),
        };
        let line = e.to_line();
        assert_eq!(line.matches('\n').count(), 1);
        let back = AuditEntry::parse_line(line.trim_end()).unwrap();
        assert_eq!(back, AuditEntry { reason: "quarter close, approved".into(), ..e });
        assert!(AuditEntry::parse_line("a,\"b").is_err());
    }
}
