//! The allocator hands out blocks as `GlobalAlloc` promises, and serves each size from its
//! own size class however often it is freed and asked for again.

#![allow(unsafe_code, clippy::unwrap_used)]

use sidecar_kit_alloc::{Allocator, good_size, usable_size};
use std::alloc::{GlobalAlloc, Layout};

#[global_allocator]
static GLOBAL: Allocator = Allocator;

/// Every size to 512 and some large ones, with every alignment to 64 and a page's: sizes
/// below their alignment included (a `Layout` may have one; a block that small comes from
/// an 8-byte class).
fn layouts() -> impl Iterator<Item = Layout> {
    let sizes = (1..=512).chain([1000, 4096, 10_000, 65_536, 300_000, 5 << 20]);
    sizes.flat_map(|size| {
        [1, 2, 4, 8, 16, 32, 64, 4096]
            .into_iter()
            .filter_map(move |align| Layout::from_size_align(size, align).ok())
    })
}

#[test]
fn every_block_is_aligned_sized_and_writable() {
    let a = Allocator;
    for layout in layouts() {
        // Many blocks alive at once: a class's blocks sit at every offset its size allows.
        let live = if layout.size() <= 4096 { 64 } else { 2 };
        // SAFETY: non-zero sizes; each block is written within its size, then freed once.
        unsafe {
            let blocks: Vec<*mut u8> = (0..live).map(|_| a.alloc(layout)).collect();
            for &p in &blocks {
                assert!(!p.is_null(), "{layout:?}");
                assert_eq!(p as usize % layout.align(), 0, "{layout:?}");
                assert!(usable_size(p) >= layout.size(), "{layout:?}");
                p.write_bytes(0xA5, layout.size());
            }
            for p in blocks {
                a.dealloc(p, layout);
            }
        }
    }
}

#[test]
fn zeroed_blocks_are_zero_even_where_a_freed_block_was() {
    let a = Allocator;
    for layout in layouts() {
        // SAFETY: as above; a dirty block is freed first so that its class has one to reuse.
        unsafe {
            let dirty = a.alloc(layout);
            dirty.write_bytes(0xFF, layout.size());
            a.dealloc(dirty, layout);
            let p = a.alloc_zeroed(layout);
            assert_eq!(p as usize % layout.align(), 0, "{layout:?}");
            let bytes = std::slice::from_raw_parts(p, layout.size());
            assert!(bytes.iter().all(|b| *b == 0), "{layout:?}");
            a.dealloc(p, layout);
        }
    }
}

#[test]
fn realloc_keeps_the_contents_and_the_alignment() {
    let a = Allocator;
    for layout in layouts().filter(|l| l.size() <= 10_000) {
        // (shrinking to a few bytes too: below the alignment, a plain block would be 8-byte
        // aligned only)
        for new_size in [
            1,
            5,
            8,
            15,
            layout.size() / 2 + 1,
            layout.size() * 3,
            70_000,
        ] {
            // SAFETY: the block is filled, resized within Layout's limits, read within the
            // smaller of both sizes, and freed with its new layout.
            unsafe {
                let p = a.alloc(layout);
                for i in 0..layout.size() {
                    p.add(i).write(i as u8);
                }
                let q = a.realloc(p, layout, new_size);
                assert!(!q.is_null());
                assert_eq!(q as usize % layout.align(), 0, "{layout:?} -> {new_size}");
                for i in 0..layout.size().min(new_size) {
                    assert_eq!(q.add(i).read(), i as u8, "{layout:?} -> {new_size} at {i}");
                }
                a.dealloc(
                    q,
                    Layout::from_size_align(new_size, layout.align()).unwrap(),
                );
            }
        }
    }
}

/// The case mimalloc's own binding gets wrong (it asks `mi_malloc_aligned` for every block):
/// once the page of a size class that is no power of two has handed out its free blocks,
/// each further block of that size came over-allocated from the next class up (48 bytes
/// from the 64-byte class), and the blocks freed into its own class were never used again.
#[test]
fn a_size_freed_and_asked_again_is_served_from_its_own_class() {
    let a = Allocator;
    for size in [48, 80, 96, 112, 160, 192, 224, 320, 448, 640] {
        // Word-aligned, as the engine's structs, boxes and tree nodes are.
        let layout = Layout::from_size_align(size, 8).unwrap();
        // Several pages' worth, so each class runs out of ready blocks more than once.
        for round in 0..4 {
            // SAFETY: live blocks of `layout`, each freed once with it.
            unsafe {
                let blocks: Vec<*mut u8> = (0..5_000).map(|_| a.alloc(layout)).collect();
                for &b in &blocks {
                    assert!(!b.is_null());
                    assert_eq!(
                        usable_size(b),
                        good_size(size),
                        "round {round}: a {size}-byte block from another class"
                    );
                }
                for b in blocks {
                    a.dealloc(b, layout);
                }
            }
        }
    }
}
