//! The global allocator wrapper: the crate's only unsafe code.
//!
//! Each block gets a small header just before the pointer handed out, holding the tag of the job that
//! allocated it (see [`ledger`](super::ledger)). The header is 8 bytes for alignments up to 8 and `align`
//! bytes above that, so every pointer keeps the alignment asked for.
#![allow(unsafe_code)]

use std::alloc::{GlobalAlloc, Layout, System};

use super::ledger::{self, Tag};

/// A global allocator that attributes every allocation's bytes to the job that made it, over `A` (the
/// system allocator by default). Opt-in, for binaries:
///
/// ```
/// #[global_allocator]
/// static ALLOCATOR: brownout_cost::CostAllocator = brownout_cost::CostAllocator::system();
/// # fn main() {}
/// ```
///
/// Costs: 8 header bytes per block (for alignments up to 8) and, inside a job, a few thread-local additions
/// per allocation; outside any job, a thread-local read. The crate's `alloc` benchmark measures it.
#[derive(Debug, Default, Clone, Copy)]
pub struct CostAllocator<A = System> {
    inner: A,
}

impl CostAllocator<System> {
    /// Meters the system allocator.
    pub const fn system() -> Self {
        CostAllocator { inner: System }
    }
}

impl<A> CostAllocator<A> {
    /// Meters `inner`.
    pub const fn new(inner: A) -> Self {
        CostAllocator { inner }
    }
}

/// Header length for an alignment: at least the 8 bytes of the tag, and a multiple of the alignment.
#[inline]
fn header(align: usize) -> usize {
    align.max(8)
}

/// The layout asked of the inner allocator: the header and the block, with the same alignment.
#[inline]
fn outer(layout: Layout) -> Option<Layout> {
    let align = layout.align();
    let size = layout.size() + header(align); // no overflow: a Layout's size is at most isize::MAX
    // A Layout's size, rounded up to its alignment, must not exceed isize::MAX.
    if size > isize::MAX as usize - (align - 1) {
        return None;
    }
    // SAFETY: `align` comes from a valid Layout (a power of two) and `size` was checked just above.
    Some(unsafe { Layout::from_size_align_unchecked(size, align) })
}

/// Writes `tag` into the header of the block at `user`.
///
/// # Safety
/// `user` must be at least 8 bytes past the start of a live allocation.
#[inline]
unsafe fn write_tag(user: *mut u8, tag: Tag) {
    // SAFETY: the caller guarantees the 8 bytes before `user` belong to the block; unaligned for align 1.
    unsafe { user.sub(8).cast::<u64>().write_unaligned(tag.to_bits()) }
}

/// Reads the tag from the header of the block at `user`.
///
/// # Safety
/// `user` must be a pointer this allocator handed out and not yet freed.
#[inline]
unsafe fn read_tag(user: *mut u8) -> Tag {
    // SAFETY: as for `write_tag`: `alloc` wrote these 8 bytes.
    Tag::from_bits(unsafe { user.sub(8).cast::<u64>().read_unaligned() })
}

impl<A> CostAllocator<A> {
    /// Gets a block for `layout` plus its header from `get`, tags it with the running job and returns the
    /// pointer past the header (null when `get` fails or the grown layout is impossible).
    ///
    /// # Safety
    /// `get` must return null or a block valid for the layout it is given.
    #[inline]
    unsafe fn tagged(&self, layout: Layout, get: impl FnOnce(Layout) -> *mut u8) -> *mut u8 {
        let Some(outer) = outer(layout) else { return std::ptr::null_mut() };
        let base = get(outer);
        if base.is_null() {
            return base;
        }
        // SAFETY: the header fits in the block, before the user part.
        unsafe {
            let user = base.add(header(layout.align()));
            write_tag(user, ledger::on_alloc(layout.size() as u64));
            user
        }
    }
}

// SAFETY: every method forwards to `inner` with a layout grown by the header and returns a pointer
// `header(align)` bytes into the inner block, which keeps `align` (the header is a multiple of it) and leaves
// `layout.size()` usable bytes. Frees and reallocs undo the same offset with the same outer layout.
unsafe impl<A: GlobalAlloc> GlobalAlloc for CostAllocator<A> {
    #[inline]
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        // SAFETY: `outer` has a non-zero size (it includes the header).
        unsafe { self.tagged(layout, |outer| self.inner.alloc(outer)) }
    }

    #[inline]
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        // SAFETY: as in `alloc`.
        unsafe { self.tagged(layout, |outer| self.inner.alloc_zeroed(outer)) }
    }

    #[inline]
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: `ptr` came from `alloc` with this `layout` (GlobalAlloc's contract), so its header is ours and
        // `outer(layout)` succeeded then.
        unsafe {
            ledger::on_free(layout.size() as u64, read_tag(ptr));
            let outer = outer(layout).unwrap_unchecked();
            self.inner.dealloc(ptr.sub(header(layout.align())), outer);
        }
    }

    #[inline]
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        let head = header(layout.align());
        let Some(new_outer_size) = new_size.checked_add(head) else { return std::ptr::null_mut() };
        if Layout::from_size_align(new_outer_size, layout.align()).is_err() {
            return std::ptr::null_mut();
        }
        // SAFETY: `ptr` and `layout` describe a block from `alloc` (GlobalAlloc's contract); on failure the old
        // block is untouched and nothing is accounted.
        unsafe {
            let old_tag = read_tag(ptr);
            let outer = outer(layout).unwrap_unchecked();
            let base = self.inner.realloc(ptr.sub(head), outer, new_outer_size);
            if base.is_null() {
                return base;
            }
            // The old bytes go back to their job; the new size is charged to the job running now.
            ledger::on_free(layout.size() as u64, old_tag);
            let user = base.add(head);
            write_tag(user, ledger::on_alloc(new_size as u64));
            user
        }
    }
}
