//! Giving free heap back to the system.
//!
//! glibc's allocator keeps memory a thread freed in that thread's arena for
//! reuse. After a busy shard empties, that free heap can be most of the
//! server's resident memory (docs/benchmarks.md, "Soak"): it looks like a
//! leak to an operator watching RSS, and another process cannot use it.
//! A shard that has just lost its last participant calls
//! [`release_free_heap`]; nothing is in flight there, so the call costs
//! nobody a packet.

/// Returns the allocator's free heap to the system where the allocator can
/// (glibc's `malloc_trim`); elsewhere it does nothing.
pub fn release_free_heap() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: malloc_trim only walks the allocator's own free lists; it
    // takes each arena's lock and has no preconditions on the caller.
    unsafe {
        libc::malloc_trim(0);
    }
}
