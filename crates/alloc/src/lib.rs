//! The global allocator of sidecar-kit's binaries and benchmarks: mimalloc.
//!
//! mimalloc's own Rust binding (`mimalloc::MiMalloc`) asks for every block with
//! `mi_malloc_aligned`, even where the alignment asked for is one every block has anyway.
//! That call takes its fast path only while the page of the block's size class has a free
//! block ready. Otherwise, for a size that is not a power of two (24, 40, 48 bytes...), it
//! over-allocates `size + align - 1` bytes from the next size class up (48 bytes come from
//! the 64-byte class), and the page of the right class is never refilled from the blocks
//! freed into it: from then on every allocation of that size takes the slow path (mimalloc
//! issue #889). The engine allocates about 150 small blocks per review; 22 of them took that
//! path on every review.
//!
//! [`Allocator`] asks for plain `mi_malloc` where a plain block is aligned enough, as Rust's
//! own `System` allocator asks `malloc`: the alignment at most 16 bytes and at most the size.
//! mimalloc's blocks of 16 bytes or more are 16-byte aligned (their size classes are
//! multiples of 16, their pages start aligned), and a smaller block is aligned to its size
//! class (8 bytes); a size below its alignment (a `Layout` may have one) therefore goes to
//! the aligned calls, as does any alignment over 16.

#![allow(unsafe_code)] // a global allocator is an unsafe impl; each call is a plain forward.

use libmimalloc_sys as mi;
use std::alloc::{GlobalAlloc, Layout};
use std::ffi::c_void;

/// The alignment mimalloc gives every block of at least this many bytes
/// (`MI_MAX_ALIGN_SIZE`): its size classes from 16 bytes up are multiples of 16, and its
/// pages start aligned to 16 bytes at least.
const MI_MAX_ALIGN_SIZE: usize = 16;

/// Whether a plain block of `size` bytes has `align`: the alignment is at most
/// [`MI_MAX_ALIGN_SIZE`] and at most the size (a block below 16 bytes is aligned to its
/// 8-byte class only).
#[inline]
fn plain(size: usize, align: usize) -> bool {
    align <= MI_MAX_ALIGN_SIZE && align <= size
}

/// mimalloc, asked with plain calls where the alignment allows it (see the crate's doc).
pub struct Allocator;

// SAFETY: every method forwards to the mimalloc call that has the same contract as the
// `GlobalAlloc` method: a block of at least `size` bytes (or null), aligned as the layout
// asks, freed or resized only through the same allocator. The plain calls are used only
// where the block they return has the alignment asked for (`plain`: see its doc; the
// tests check the alignment of many live blocks of every small size, of sizes below their
// alignment, and of large ones).
unsafe impl GlobalAlloc for Allocator {
    #[inline]
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        // SAFETY: plain FFI calls; the sizes come from a valid Layout.
        unsafe {
            if plain(layout.size(), layout.align()) {
                mi::mi_malloc(layout.size()).cast()
            } else {
                mi::mi_malloc_aligned(layout.size(), layout.align()).cast()
            }
        }
    }

    #[inline]
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        // SAFETY: as in `alloc`.
        unsafe {
            if plain(layout.size(), layout.align()) {
                mi::mi_zalloc(layout.size()).cast()
            } else {
                mi::mi_zalloc_aligned(layout.size(), layout.align()).cast()
            }
        }
    }

    #[inline]
    unsafe fn dealloc(&self, ptr: *mut u8, _layout: Layout) {
        // SAFETY: `ptr` came from this allocator (GlobalAlloc's contract); mi_free frees
        // blocks from the plain and the aligned calls alike.
        unsafe { mi::mi_free(ptr.cast::<c_void>()) }
    }

    #[inline]
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        // SAFETY: `ptr` came from this allocator with `layout`; the new block has the
        // layout's alignment (`plain` for the new size, else the aligned call keeps it; both
        // take a block from either call).
        unsafe {
            if plain(new_size, layout.align()) {
                mi::mi_realloc(ptr.cast::<c_void>(), new_size).cast()
            } else {
                mi::mi_realloc_aligned(ptr.cast::<c_void>(), new_size, layout.align()).cast()
            }
        }
    }
}

/// The usable size of a block this allocator handed out: the size class that served it.
/// For the tests, which check that a size is served from its own class ([`good_size`]).
///
/// # Safety
/// `ptr` must be a live block from [`Allocator`].
#[doc(hidden)]
pub unsafe fn usable_size(ptr: *const u8) -> usize {
    // SAFETY: the caller passes a live mimalloc block.
    unsafe { mi::mi_usable_size(ptr.cast::<c_void>()) }
}

/// The size class mimalloc serves `size` from when asked plainly.
#[doc(hidden)]
pub fn good_size(size: usize) -> usize {
    // SAFETY: a pure computation on a number.
    unsafe { mi::mi_good_size(size) }
}
