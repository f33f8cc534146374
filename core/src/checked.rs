//! Money and quantity arithmetic that cannot wrap, in release builds too. Every
//! input that could push a value out of range is refused earlier with a reason; a
//! result out of range here is a broken invariant — a bug — so it stops the engine
//! on the spot, before any event of the command is written (the engine reports the
//! command's offset and seq and keeps its last good snapshot).

/// `a - b`, or a stop naming `what`.
#[inline]
#[track_caller]
pub fn sub(a: u64, b: u64, what: &'static str) -> u64 {
    match a.checked_sub(b) {
        Some(v) => v,
        None => broken(what, a, b),
    }
}

/// `a + b`, or a stop naming `what`.
#[inline]
#[track_caller]
pub fn add(a: u64, b: u64, what: &'static str) -> u64 {
    match a.checked_add(b) {
        Some(v) => v,
        None => broken(what, a, b),
    }
}

#[cold]
#[inline(never)]
#[track_caller]
fn broken(what: &'static str, a: u64, b: u64) -> ! {
    panic!("invariant broken: {what} out of range ({a}, {b})")
}
