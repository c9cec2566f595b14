//! The memory ballast: allocated in chunks, every page written so RSS really rises, held, then freed.

use std::hint::black_box;
use std::sync::atomic::Ordering;
use std::time::Instant;

use super::bytes::human;
use super::limits::MemoryLimit;
use super::state::Shared;
use super::{MAX_CEILING, MemoryTarget, PressureError, Ramp, StopReason};

/// Largest single allocation. Above glibc's largest mmap threshold (32 MiB), so each chunk is its own
/// mapping and goes back to the kernel when freed; small enough to fill (≈ 10–20 ms) between stop checks.
pub(crate) const CHUNK: u64 = 64 << 20;

/// The pattern the ballast is filled with, copied a block at a time (fast even in debug builds).
static FILL: [u8; 64 * 1024] = [0xA5; 64 * 1024];

/// The ballast size in bytes, refused above `ceiling × limit`.
pub(crate) fn resolve(target: MemoryTarget, ceiling: f64, limit: &MemoryLimit) -> Result<u64, PressureError> {
    if !(ceiling.is_finite() && ceiling > 0.0 && ceiling <= MAX_CEILING) {
        return Err(PressureError::new("memory.ceiling", format!("must be within (0, {MAX_CEILING}], got {ceiling}")));
    }
    let max = (limit.bytes as f64 * ceiling) as u64;
    let (field, bytes) = match target {
        MemoryTarget::Bytes(0) => {
            return Err(PressureError::new("memory.bytes", "must be at least 1 byte"));
        }
        MemoryTarget::Bytes(b) => ("memory.bytes", b),
        MemoryTarget::FractionOfLimit(f) if f.is_finite() && f > 0.0 && f <= 1.0 => {
            ("memory.fraction_of_limit", (limit.bytes as f64 * f) as u64)
        }
        MemoryTarget::FractionOfLimit(f) => {
            return Err(PressureError::new("memory.fraction_of_limit", format!("must be within (0, 1], got {f}")));
        }
    };
    if bytes > max {
        return Err(PressureError::above_ceiling(
            field,
            format!(
                "{} is above the ceiling {} ({}% of the {limit})",
                human(bytes),
                human(max),
                (ceiling * 100.0).round()
            ),
        ));
    }
    Ok(bytes.max(1))
}

/// Touched chunks of memory.
#[derive(Default)]
struct Ballast {
    chunks: Vec<Vec<u8>>,
    held: u64,
}

impl Ballast {
    /// Adds `bytes`, chunk by chunk, writing every page. `Err` when a stop came or the allocator refused.
    fn grow(&mut self, bytes: u64, shared: &Shared) -> Result<(), ()> {
        let mut left = bytes;
        while left > 0 {
            if shared.is_stopping() {
                return Err(());
            }
            let len = usize::try_from(left.min(CHUNK)).map_err(|_| ())?;
            let mut chunk: Vec<u8> = Vec::new();
            if let Err(e) = chunk.try_reserve_exact(len) {
                tracing::warn!(pressure = %shared.name, error = %e, "the allocator refused the ballast");
                shared.stop(StopReason::Failed);
                return Err(());
            }
            // The reservation is unbacked memory. Filling it writes every page, so the kernel backs each
            // one and RSS really rises (a fallible reservation cannot be calloc'd, so this costs a memcpy,
            // ≈ 5–15 ms per chunk); `black_box` keeps the writes from being optimised away.
            while chunk.len() < len {
                let n = FILL.len().min(len - chunk.len());
                chunk.extend_from_slice(&FILL[..n]);
            }
            black_box(chunk.as_mut_slice());
            self.chunks.push(chunk);
            self.held += len as u64;
            left -= len as u64;
            shared.work.store(self.held, Ordering::Relaxed);
        }
        Ok(())
    }
}

/// Grows the ballast to `bytes` (at once or along `ramp`), holds it until `end` or a stop, then frees it.
pub(crate) fn run(shared: &Shared, bytes: u64, ramp: Option<Ramp>, end: Instant) {
    let mut ballast = Ballast::default();
    let step = ramp.map_or(bytes, |r| r.step.max(1));
    loop {
        if ballast.held < bytes {
            let grow = step.min(bytes - ballast.held);
            if ballast.grow(grow, shared).is_err() {
                break;
            }
        }
        let next = match ramp {
            Some(r) if ballast.held < bytes => super::deadline(Instant::now(), r.every).min(end),
            _ => end,
        };
        if shared.wait_until(next) || Instant::now() >= end {
            break;
        }
    }
    drop(ballast);
    shared.work.store(0, Ordering::Relaxed);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pressure::LimitSource;

    fn limit() -> MemoryLimit {
        MemoryLimit { bytes: 10 << 30, source: LimitSource::PhysicalMemory }
    }

    #[test]
    fn targets_resolve_against_the_limit_and_the_ceiling() {
        assert_eq!(resolve(MemoryTarget::Bytes(1 << 30), 0.8, &limit()), Ok(1 << 30));
        assert_eq!(resolve(MemoryTarget::FractionOfLimit(0.25), 0.8, &limit()), Ok(10 << 28));
        let refused = resolve(MemoryTarget::FractionOfLimit(0.85), 0.8, &limit()).unwrap_err();
        assert!(refused.is_above_ceiling());
        assert_eq!(refused.field(), "memory.fraction_of_limit");
        assert_eq!(
            refused.to_string(),
            "memory.fraction_of_limit: 8.5 GiB is above the ceiling 8.0 GiB (80% of the 10.0 GiB limit from /proc/meminfo)"
        );
        let refused = resolve(MemoryTarget::Bytes(9 << 30), 0.8, &limit()).unwrap_err();
        assert_eq!(refused.field(), "memory.bytes");
        assert_eq!(resolve(MemoryTarget::Bytes(9 << 30), 0.9, &limit()), Ok(9 << 30));
        assert_eq!(resolve(MemoryTarget::Bytes(1), 0.95, &limit()).unwrap_err().field(), "memory.ceiling");
        assert_eq!(
            resolve(MemoryTarget::FractionOfLimit(f64::NAN), 0.8, &limit()).unwrap_err().field(),
            "memory.fraction_of_limit"
        );
        assert_eq!(resolve(MemoryTarget::Bytes(0), 0.8, &limit()).unwrap_err().field(), "memory.bytes");
    }
}
