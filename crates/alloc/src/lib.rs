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
//! [`Allocator`] asks for plain `mi_malloc` where the alignment is at most the one every
//! mimalloc block has (16 bytes, as C's `malloc` promises: its size classes are multiples of
//! 16 and its pages start aligned), as Rust's own `System` allocator does with `malloc`, and
//! for the aligned calls only where a type needs more.

#![allow(unsafe_code)] // a global allocator is an unsafe impl; each call is a plain forward.

use libmimalloc_sys as mi;
use std::alloc::{GlobalAlloc, Layout};
use std::ffi::c_void;

/// The alignment every mimalloc block has, whatever its size (`MI_MAX_ALIGN_SIZE`): its size
/// classes are multiples of 16 bytes and its pages start aligned to 16 bytes at least.
const MI_MAX_ALIGN_SIZE: usize = 16;

/// mimalloc, asked with plain calls where the alignment allows it (see the crate's doc).
pub struct Allocator;

// SAFETY: every method forwards to the mimalloc call that has the same contract as the
// `GlobalAlloc` method: a block of at least `size` bytes (or null), aligned as the layout
// asks, freed or resized only through the same allocator. The plain calls are used only
// where `layout.align()` is at most MI_MAX_ALIGN_SIZE, which every mimalloc block satisfies (the
// tests check the alignment of blocks of every small size and of large ones).
unsafe impl GlobalAlloc for Allocator {
    #[inline]
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        // SAFETY: plain FFI calls; the sizes come from a valid Layout.
        unsafe {
            if layout.align() <= MI_MAX_ALIGN_SIZE {
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
            if layout.align() <= MI_MAX_ALIGN_SIZE {
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
        // SAFETY: `ptr` came from this allocator with `layout`; the new block keeps the
        // layout's alignment (plain blocks have MI_MAX_ALIGN_SIZE, the aligned call keeps it).
        unsafe {
            if layout.align() <= MI_MAX_ALIGN_SIZE {
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
