//! Replays arbitrary bytes as a snapshot and a log: must never panic, whatever is on disk.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let (split, rest) = match data.split_first() {
        Some((s, r)) => (*s as usize, r),
        None => return,
    };
    let at = split.min(rest.len());
    let (snapshot, log) = rest.split_at(at);
    let _ = dcos_store::replay_bytes(Some(snapshot), log);
    let _ = dcos_store::replay_bytes(None, rest);
});
